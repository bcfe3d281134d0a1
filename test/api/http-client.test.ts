/**
 * The JSON client every side uses (api/http-client.ts), against real servers: plain HTTP and a
 * unix socket on this host, TLS servers with certificates from the mesh's own CA code, and a
 * real registry for the trusted case. Each error a user can meet comes back as a MeshError with
 * the code the CLI prints.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../src/api/http-client.js';
import { isMeshError, type MeshError } from '../../src/errors/index.js';
import { HOSTS } from '../helpers/hosts.js';
import { startTestRegistry } from '../helpers/registry.js';
import { makePki } from '../proxy/pki.js';

const [HOST] = HOSTS.httpClient;

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A server that records each request and answers with what `answer` says for its path. */
let seen: Seen[];
const answers = new Map<string, (res: ServerResponse) => void>();
let server: Server;
let base: string;
let socketDir: string;
let socketServer: Server;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
    const answer = answers.get(new URL(req.url!, 'http://x').pathname);
    if (answer) answer(res);
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
  });
}

function json(status: number, body: unknown): (res: ServerResponse) => void {
  return (res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function listen(s: Server, ...args: unknown[]): Promise<void> {
  (s.listen as (...a: unknown[]) => void)(...args);
  await once(s, 'listening');
}

async function failure(p: Promise<unknown>): Promise<MeshError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isMeshError(e)) throw new Error(`expected a MeshError, got ${String(e)}`);
  return e;
}

beforeAll(async () => {
  seen = [];
  server = createServer(handler);
  await listen(server, 0, HOST);
  base = `http://${HOST}:${(server.address() as AddressInfo).port}`;
  socketDir = await mkdtemp(join(tmpdir(), 'meshctl-http-client-'));
  socketServer = createServer(handler);
  await listen(socketServer, join(socketDir, 'api.sock'));
  // A server that takes the request and never answers.
  answers.set('/hang', () => undefined);
});

afterAll(async () => {
  server.closeAllConnections();
  socketServer.closeAllConnections();
  await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => socketServer.close(r))]);
  await rm(socketDir, { recursive: true, force: true });
});

describe('HttpClient requests', () => {
  it('sends JSON with its length, the bearer token, and the query without undefined values', async () => {
    const c = new HttpClient({ baseUrl: base, token: 's3cret' });
    try {
      const res = await c.put<{ ok: boolean }>('/v1/x', { a: 1 }, { query: { index: 7, wait: undefined, q: 'a b' } });
      expect(res).toMatchObject({ status: 200, body: { ok: true } });
      const req = seen.at(-1)!;
      expect(req).toMatchObject({ method: 'PUT', url: '/v1/x?index=7&q=a+b', body: '{"a":1}' });
      expect(req.headers).toMatchObject({
        authorization: 'Bearer s3cret',
        'content-type': 'application/json',
        'content-length': '7',
        accept: 'application/json',
      });
    } finally {
      c.close();
    }
  });

  it('a GET carries no body and no content type; an empty answer is an undefined body', async () => {
    answers.set('/empty', (res) => res.writeHead(204).end());
    const c = new HttpClient({ baseUrl: base });
    try {
      expect((await c.get('/empty')).body).toBeUndefined();
      const req = seen.at(-1)!;
      expect(req.headers['content-type']).toBeUndefined();
      expect(req.headers.authorization).toBeUndefined();
    } finally {
      c.close();
    }
  });

  it('talks to a unix socket (the agent) with the same calls', async () => {
    const c = new HttpClient({ baseUrl: 'http://agent', socketPath: join(socketDir, 'api.sock') });
    try {
      expect((await c.post<{ ok: boolean }>('/v1/agent/x', { b: 2 })).body).toEqual({ ok: true });
      expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/v1/agent/x', body: '{"b":2}' });
    } finally {
      c.close();
    }
  });

  it('keeps as many idle connections as maxFreeSockets says, so the next burst opens none', async () => {
    // A server that holds requests until `burst` are in, so the client must open one connection each.
    const burst = 300;
    const held: ServerResponse[] = [];
    let connections = 0;
    const s = createServer((_req, res) => {
      held.push(res);
      if (held.length === burst) for (const r of held.splice(0)) r.writeHead(200).end('{}');
    });
    s.on('connection', () => (connections += 1));
    await listen(s, 0, HOST);
    const url = `http://${HOST}:${(s.address() as AddressInfo).port}`;
    const newConnections = async (c: HttpClient): Promise<number> => {
      const before = connections;
      await Promise.all(Array.from({ length: burst }, () => c.get('/')));
      // Sockets go back to the pool on the next turns of the event loop.
      await new Promise((r) => setTimeout(r, 50));
      return connections - before;
    };
    const kept = new HttpClient({ baseUrl: url, maxFreeSockets: burst });
    const dflt = new HttpClient({ baseUrl: url });
    try {
      expect(await newConnections(kept)).toBe(burst);
      expect(await newConnections(kept)).toBe(0);
      // Node keeps 256 by default: the rest of a burst past that reconnects.
      expect(await newConnections(dflt)).toBe(burst);
      expect(await newConnections(dflt)).toBe(burst - 256);
    } finally {
      kept.close();
      dflt.close();
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it.each(['registry:7443', '10.0.0.5:7443', 'ftp://10.0.0.5/', 'https://'])(
    'refuses the base URL %s before sending anything',
    (baseUrl) => {
      expect(() => new HttpClient({ baseUrl })).toThrow(
        expect.objectContaining({ code: 'MESH_ERR_INVALID_ARGUMENT', message: `invalid URL '${baseUrl}'` }),
      );
    },
  );
});

describe('HttpClient errors', () => {
  const c = () => new HttpClient({ baseUrl: base, timeoutMs: 2_000 });

  it.each([
    [
      'the server’s own code, message and hint',
      json(409, { code: 'MESH_ERR_CONFLICT', message: 'taken', hint: 'pick another' }),
      { code: 'MESH_ERR_CONFLICT', message: 'taken', hint: 'pick another' },
    ],
    [
      'a proxy admin’s {error: {…}} body',
      json(400, { error: { code: 'MESH_ERR_INVALID_ARGUMENT', message: 'bad drain' } }),
      { code: 'MESH_ERR_INVALID_ARGUMENT', message: 'bad drain' },
    ],
    [
      'a status without a body',
      (res: ServerResponse) => res.writeHead(404).end(),
      { code: 'MESH_ERR_NOT_FOUND', message: 'request failed with HTTP 404' },
    ],
    [
      'a code the client does not know, by its status',
      json(403, { code: 'SOMETHING_ELSE', message: 'no' }),
      { code: 'MESH_ERR_FORBIDDEN', message: 'no' },
    ],
    ['503', json(503, {}), { code: 'MESH_ERR_UNAVAILABLE' }],
    ['500', json(500, {}), { code: 'MESH_ERR_INTERNAL' }],
    ['401', json(401, {}), { code: 'MESH_ERR_UNAUTHENTICATED' }],
    ['413', json(413, {}), { code: 'MESH_ERR_BODY_TOO_LARGE' }],
  ])('an error answer: %s', async (_what, answer, expected) => {
    const path = `/err/${seen.length}`;
    answers.set(path, answer);
    const client = c();
    try {
      expect(await failure(client.get(path))).toMatchObject(expected);
    } finally {
      client.close();
    }
  });

  it('an answer that is not JSON says so and asks whether the address is a mesh one', async () => {
    answers.set('/html', (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'));
    const client = c();
    try {
      const e = await failure(client.get('/html'));
      expect(e).toMatchObject({ code: 'MESH_ERR_UNAVAILABLE', hint: 'Is this a meshctl registry/agent address?' });
      expect(e.message).toBe(
        `${HOST}:${(server.address() as AddressInfo).port} answered 200 with a body that is not JSON`,
      );
    } finally {
      client.close();
    }
  });

  it('a server that never answers is a timeout naming the call', async () => {
    const client = new HttpClient({ baseUrl: base });
    try {
      const e = await failure(client.get('/hang', { timeoutMs: 200 }));
      expect(e.code).toBe('MESH_ERR_TIMEOUT');
      expect(e.message).toMatch(/^GET \/hang to 127\.0\.12\.10:\d+ timed out after 200ms$/);
    } finally {
      client.close();
    }
  });

  it('an aborted call says it was aborted', async () => {
    const client = c();
    try {
      const ac = new AbortController();
      const p = client.get('/hang', { signal: ac.signal });
      ac.abort();
      expect(await failure(p)).toMatchObject({
        code: 'MESH_ERR_TIMEOUT',
        message: expect.stringMatching(/was aborted$/) as string,
      });
    } finally {
      client.close();
    }
  });

  it('nobody listening, or no socket file: unavailable, naming the target', async () => {
    const closed = createServer();
    await listen(closed, 0, HOST);
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const tcp = new HttpClient({ baseUrl: `http://${HOST}:${port}` });
    const unix = new HttpClient({ baseUrl: 'http://agent', socketPath: join(socketDir, 'none.sock') });
    try {
      expect(await failure(tcp.get('/'))).toMatchObject({
        code: 'MESH_ERR_UNAVAILABLE',
        message: `cannot reach ${HOST}:${port} (ECONNREFUSED)`,
      });
      expect(await failure(unix.get('/'))).toMatchObject({
        code: 'MESH_ERR_UNAVAILABLE',
        message: `cannot reach unix:${join(socketDir, 'none.sock')} (ENOENT)`,
      });
    } finally {
      tcp.close();
      unix.close();
    }
  });
});

describe('HttpClient over TLS', () => {
  it('trusts exactly the CA it is given: the registry answers, another mesh’s CA is a CA mismatch', async () => {
    const reg = await startTestRegistry();
    const other = await makePki('other.mesh');
    const trusted = new HttpClient({ baseUrl: reg.url, ca: reg.caPem });
    const stranger = new HttpClient({ baseUrl: reg.url, ca: other.rootPem });
    try {
      expect((await trusted.get<{ status: string }>('/v1/health')).status).toBe(200);
      const e = await failure(stranger.get('/v1/health'));
      expect(e.code).toBe('MESH_ERR_CA_MISMATCH');
      expect(e.message).toMatch(/presented a certificate this mesh CA does not vouch for/);
    } finally {
      trusted.close();
      stranger.close();
      await reg.close();
    }
  });

  it('an expired or not-yet-valid certificate names this host’s clock, not the CA', async () => {
    const pki = await makePki();
    const day = 24 * 3600_000;
    for (const [validity, word] of [
      [{ notBefore: new Date(Date.now() - 3 * day), notAfter: new Date(Date.now() - day) }, 'has expired'],
      [{ notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 3 * day) }, 'is not valid yet'],
    ] as const) {
      const leaf = await pki.forge({ uris: [`spiffe://${pki.trustDomain}/svc/registry`], ...validity });
      const tls = createTlsServer({ cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1.3' }, (_req, res) =>
        res.end('{}'),
      );
      await listen(tls, 0, HOST);
      const client = new HttpClient({
        baseUrl: `https://${HOST}:${(tls.address() as AddressInfo).port}`,
        ca: pki.rootPem,
      });
      try {
        const e = await failure(client.get('/'));
        expect(e.code).toBe('MESH_ERR_CERT_INVALID');
        expect(e.message).toContain(`certificate ${word} by this host's clock`);
        expect(e.hint).toMatch(/timedatectl/);
      } finally {
        client.close();
        tls.closeAllConnections();
        await new Promise((r) => tls.close(r));
      }
    }
  });
});
