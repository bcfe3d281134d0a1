/**
 * A small JSON-over-HTTPS client for mesh APIs (the registry; later the agent's unix socket).
 * Errors come back as MeshErrors: the server's `{code, message, hint}` when it sent one,
 * otherwise a code for what went wrong on the way (unreachable, timeout, CA mismatch).
 */
import https from 'node:https';
import { ResumingAgent, type SharedTlsSession } from './resuming-agent.js';
import http from 'node:http';
import { MeshError, isErrorCode, type ErrorCode } from '../errors/index.js';

export interface HttpClientOptions {
  baseUrl: string;
  /** PEM roots to trust (the mesh CA); the system store is never used for the mesh. */
  ca?: string | string[];
  cert?: string;
  key?: string;
  token?: string;
  /** For the agent's unix socket. */
  socketPath?: string;
  timeoutMs?: number;
  /**
   * Idle keep-alive connections kept for reuse (Node's default: 256). A client that holds many
   * blocking queries at once (the control-plane bench's simulated agents) sets it to as many,
   * so its next round reuses the connections instead of making new TLS handshakes.
   */
  maxFreeSockets?: number;
  /**
   * A TLS session shared with other clients of the same certificate to other servers of the
   * mesh (an agent's clients of every registry), so a failover resumes it; by default its own.
   */
  tlsSession?: SharedTlsSession;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface JsonResponse<T> {
  status: number;
  body: T;
  headers: http.IncomingHttpHeaders;
}

const TLS_TRUST_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class HttpClient {
  readonly #agent: http.Agent;
  readonly #url: URL;

  readonly #opts: HttpClientOptions;

  constructor(opts: HttpClientOptions) {
    this.#opts = opts;
    let url: URL | undefined;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      url = undefined;
    }
    // 'registry:7443' parses as a URL with the scheme 'registry:'; Node would throw a TypeError on the first call.
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:'))
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid URL '${opts.baseUrl}'`, {
        hint: 'Use https://HOST:PORT, e.g. https://10.0.0.5:7443.',
      });
    this.#url = url;
    if (this.#url.protocol === 'https:') {
      const tlsOpts: https.AgentOptions = { keepAlive: true, minVersion: 'TLSv1.3' };
      if (opts.maxFreeSockets !== undefined) tlsOpts.maxFreeSockets = opts.maxFreeSockets;
      if (opts.ca !== undefined) tlsOpts.ca = opts.ca;
      if (opts.cert !== undefined) tlsOpts.cert = opts.cert;
      if (opts.key !== undefined) tlsOpts.key = opts.key;
      // Keeps its TLS session when a connection fails, to resume when the server is back.
      this.#agent = new ResumingAgent(tlsOpts, opts.tlsSession);
    } else {
      this.#agent = new http.Agent({
        keepAlive: true,
        ...(opts.maxFreeSockets !== undefined ? { maxFreeSockets: opts.maxFreeSockets } : {}),
      });
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  get<T>(path: string, o: RequestOptions = {}): Promise<JsonResponse<T>> {
    return this.request<T>('GET', path, o);
  }
  put<T>(path: string, body?: unknown, o: RequestOptions = {}): Promise<JsonResponse<T>> {
    return this.request<T>('PUT', path, { ...o, body });
  }
  post<T>(path: string, body?: unknown, o: RequestOptions = {}): Promise<JsonResponse<T>> {
    return this.request<T>('POST', path, { ...o, body });
  }
  delete<T>(path: string, o: RequestOptions = {}): Promise<JsonResponse<T>> {
    return this.request<T>('DELETE', path, o);
  }

  request<T>(method: string, path: string, o: RequestOptions = {}): Promise<JsonResponse<T>> {
    const url = new URL(path, this.#url);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    if (this.#opts.token) headers.authorization = `Bearer ${this.#opts.token}`;
    const mod = url.protocol === 'https:' ? https : http;
    const timeoutMs = o.timeoutMs ?? this.#opts.timeoutMs ?? 15_000;
    const target = this.#opts.socketPath ? `unix:${this.#opts.socketPath}` : url.host;

    return new Promise<JsonResponse<T>>((resolve, reject) => {
      const req = mod.request(
        {
          method,
          protocol: url.protocol,
          hostname: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port,
          path: url.pathname + url.search,
          headers,
          agent: this.#agent,
          ...(this.#opts.socketPath ? { socketPath: this.#opts.socketPath } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) =>
            reject(new MeshError('MESH_ERR_UNAVAILABLE', `connection to ${target} broke: ${e.message}`)),
          );
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = undefined;
            if (text.length > 0) {
              try {
                body = JSON.parse(text);
              } catch {
                reject(
                  new MeshError(
                    'MESH_ERR_UNAVAILABLE',
                    `${target} answered ${res.statusCode} with a body that is not JSON`,
                    { hint: 'Is this a meshctl registry/agent address?' },
                  ),
                );
                return;
              }
            }
            const status = res.statusCode ?? 0;
            if (status >= 400) reject(errorFromBody(status, body));
            else resolve({ status, body: body as T, headers: res.headers });
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy(
          new MeshError('MESH_ERR_TIMEOUT', `${method} ${url.pathname} to ${target} timed out after ${timeoutMs}ms`),
        );
      }, timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(transportError(e, target));
      });
      if (payload) req.end(payload);
      else req.end();
    });
  }
}

function errorFromBody(status: number, body: unknown): MeshError {
  // The registry and agent answer `{code, message, hint}`; a proxy's admin socket `{error: {…}}`.
  const outer = (body ?? {}) as { error?: unknown };
  const inner = typeof outer.error === 'object' && outer.error !== null ? outer.error : body;
  const b = (inner ?? {}) as { code?: unknown; message?: unknown; hint?: unknown };
  const code: ErrorCode = isErrorCode(b.code) ? b.code : statusCode(status);
  const message = typeof b.message === 'string' ? b.message : `request failed with HTTP ${status}`;
  return new MeshError(code, message, typeof b.hint === 'string' ? { hint: b.hint } : {});
}

function statusCode(status: number): ErrorCode {
  if (status === 401) return 'MESH_ERR_UNAUTHENTICATED';
  if (status === 403) return 'MESH_ERR_FORBIDDEN';
  if (status === 404) return 'MESH_ERR_NOT_FOUND';
  if (status === 409) return 'MESH_ERR_CONFLICT';
  if (status === 413) return 'MESH_ERR_BODY_TOO_LARGE';
  if (status < 500) return 'MESH_ERR_BAD_REQUEST';
  if (status === 503) return 'MESH_ERR_UNAVAILABLE';
  return 'MESH_ERR_INTERNAL';
}

function transportError(e: NodeJS.ErrnoException, target: string): MeshError {
  if (e instanceof MeshError) return e;
  if (e.name === 'AbortError') return new MeshError('MESH_ERR_TIMEOUT', `request to ${target} was aborted`);
  const code = e.code ?? '';
  // Not a trust problem but a time one: most often this host's clock is off.
  if (code === 'CERT_NOT_YET_VALID' || code === 'CERT_HAS_EXPIRED') {
    const what = code === 'CERT_NOT_YET_VALID' ? 'is not valid yet' : 'has expired';
    return new MeshError(
      'MESH_ERR_CERT_INVALID',
      `${target}'s certificate ${what} by this host's clock (${new Date().toISOString()}; ${code})`,
      {
        hint: "Check this host's clock (`timedatectl`, NTP): certificates allow 2 minutes of skew. If the clock is right, the peer's certificate is outside its validity.",
      },
    );
  }
  if (TLS_TRUST_ERRORS.has(code)) {
    return new MeshError(
      'MESH_ERR_CA_MISMATCH',
      `${target} presented a certificate this mesh CA does not vouch for (${code})`,
    );
  }
  if (
    code === 'ECONNREFUSED' ||
    code === 'ENOENT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE'
  ) {
    return new MeshError('MESH_ERR_UNAVAILABLE', `cannot reach ${target} (${code})`);
  }
  if (code === 'EACCES')
    return new MeshError('MESH_ERR_FORBIDDEN', `no permission to connect to ${target}`, {
      hint: 'Run as root or as a member of the meshctl group.',
    });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new MeshError('MESH_ERR_UNAVAILABLE', `cannot resolve ${target}`);
  return new MeshError('MESH_ERR_UNAVAILABLE', `request to ${target} failed: ${e.message}`);
}
