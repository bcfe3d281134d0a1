/** Raw HTTPS requests for tests that must send what the typed client never would (bad JSON, huge bodies). */
import https from 'node:https';

export interface RawResponse {
  status: number;
  body: { code?: string; message?: string; [k: string]: unknown };
  headers: Record<string, string | string[] | undefined>;
}

export function rawRequest(
  baseUrl: string,
  opts: {
    method?: string;
    path: string;
    ca: string;
    token?: string;
    body?: string | Buffer;
    contentType?: string;
    cert?: string;
    key?: string;
    maxVersion?: 'TLSv1.2' | 'TLSv1.3';
    /** Source address to connect from (another loopback address is another client host). */
    localAddress?: string;
  },
): Promise<RawResponse> {
  const url = new URL(opts.path, baseUrl);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    const req = https.request(
      {
        method: opts.method ?? 'GET',
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        ca: opts.ca,
        headers,
        agent: false,
        ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
        ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: RawResponse['body'];
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            body = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
