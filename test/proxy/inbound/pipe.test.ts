/**
 * The inbound of an http service is a byte pipe unless a rule needs HTTP there (mode.ts): the
 * mTLS handshake and the intention check still decide each connection, a denied caller and an
 * unreachable app still get the mesh's HTTP answer (with the connection's proof), the app's own
 * bytes pass unchanged, and a push that turns the mode to http closes open pipes.
 * Mesh clients here are raw TLS sockets with web's certificate, so the test sees the wire.
 */
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { meshProof } from '../../../src/proxy/http/mesh-proof.js';
import type { MeshProxy } from '../../../src/proxy/proxy.js';
import type { ProxySnapshotInput } from '../../../src/proxy/snapshot.js';
import {
  deadPort,
  defer,
  get,
  inboundPort,
  keepAliveAgent,
  outboundPort,
  snapshot,
  startHttpApp,
  startProxy,
  waitFor,
} from '../harness.js';
import { ALLOW_WEB, ALLOW_WEB_L7, webApiFixture, webApiPki } from '../web-api.js';

const certs = webApiPki();

const { webProxy } = webApiFixture(certs);

interface InboundStats {
  mode: string;
  openByMode: { pipe: number; http: number };
  requests: number;
}

interface UpstreamFigures {
  responses: Record<string, number>;
  meshErrors: Record<string, number>;
}

/** The contract's figures (GET /metrics): the service's answers apart from the mesh's. */
function metricsOf(p: MeshProxy): { upstreams: UpstreamFigures[] } {
  return JSON.parse(JSON.stringify(p.metrics())) as { upstreams: UpstreamFigures[] };
}

function inboundStats(p: MeshProxy): InboundStats {
  return (p.stats() as { inbound: InboundStats }).inbound;
}

/** A mesh client (web's certificate) on a mesh port, once its handshake is done. */
function meshClient(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: [certs().pki.rootPem],
      key: certs().webLeaf.keyPem,
      cert: certs().webLeaf.certPem,
      checkServerIdentity: () => undefined,
    });
    defer(() => s.destroy());
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `request` and reads until a whole response (by content-length) or the close. */
function exchange(s: TLSSocket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const done = (): void => {
      s.off('data', onData);
      s.off('close', done);
      resolve(data);
    };
    const onData = (d: Buffer): void => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(data);
      if (end >= 0 && len && data.length >= end + 4 + Number(len[1])) done();
    };
    s.on('data', onData);
    s.once('close', done);
    s.on('error', () => undefined);
    s.write(request);
  });
}

function header(raw: string, name: string): string | undefined {
  return new RegExp(`\\r\\n${name}: *([^\\r\\n]*)`, 'i').exec(raw)?.[1];
}

/** A WebSocket upgrade request through web's outbound; resolves with the answer's status and reason. */
function upgradeThrough(port: number): Promise<{ status: number; reason: string | undefined; proof: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: '/ws',
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
        'sec-websocket-version': '13',
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      resolve({
        status: res.statusCode ?? 0,
        reason: res.headers['x-meshctl-reason'] as string | undefined,
        proof: res.headers['x-meshctl-proof'],
      });
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, reason: undefined, proof: undefined });
    });
    req.end();
  });
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nhost: api\r\n\r\n`;

async function apiWith(intentions: ProxySnapshotInput['intentions'], appPort?: number) {
  const app = appPort === undefined ? await startHttpApp('api-1') : undefined;
  const snap = (version: number, i: ProxySnapshotInput['intentions'], port = 0) =>
    snapshot({
      version,
      pki: certs().pki,
      leaf: certs().apiLeaf,
      service: 'api',
      appPort: appPort ?? app!.port,
      inboundPort: port,
      intentions: i,
    });
  const proxy = await startProxy(snap(1, intentions));
  const port = inboundPort(proxy);
  return {
    app,
    proxy,
    port,
    push: (version: number, i: ProxySnapshotInput['intentions']) => proxy.apply(snap(version, i, port)),
  };
}

describe('the inbound of an http service as a byte pipe', () => {
  it("passes the app's bytes unchanged, keep-alive included, and says so in its stats", async () => {
    const api = await apiWith(ALLOW_WEB);
    expect(inboundStats(api.proxy).mode).toBe('pipe');
    const s = await meshClient(api.port);
    const one = await exchange(s, GET('/one'));
    const two = await exchange(s, GET('/two'));
    expect(one).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(two).toContain('"url":"/two"');
    // The app's own keep-alive hint: a parsing inbound would put its 65 s there.
    expect(header(one, 'keep-alive')).toBe('timeout=30');
    expect(api.app!.connections).toBe(1);
    expect(inboundStats(api.proxy)).toMatchObject({ openByMode: { pipe: 1, http: 0 }, requests: 0 });
  });

  it('answers a denied caller 403 with the reason and the proof of this connection, then closes', async () => {
    const api = await apiWith([]);
    const s = await meshClient(api.port);
    const raw = await exchange(s, GET('/'));
    expect(raw).toMatch(/^HTTP\/1\.1 403 /);
    expect(header(raw, 'x-meshctl-reason')).toBe('default-deny web -> api');
    expect(header(raw, 'x-meshctl-proof')).toBe(meshProof(s));
    await waitFor(() => s.destroyed || s.readableEnded, 'the denied connection closes');
    expect(api.app!.seen).toEqual([]);
  });

  it('answers 502 app-unavailable with the proof when the app cannot be reached', async () => {
    const api = await apiWith(ALLOW_WEB, await deadPort());
    const s = await meshClient(api.port);
    const raw = await exchange(s, GET('/'));
    expect(raw).toMatch(/^HTTP\/1\.1 502 /);
    expect(header(raw, 'x-meshctl-reason')).toBe('app-unavailable api');
    expect(header(raw, 'x-meshctl-proof')).toBe(meshProof(s));
    expect((api.proxy.stats() as { inbound: { errors: Record<string, number> } }).inbound.errors).toEqual({
      'app-unavailable api': 1,
    });
  });

  it("lets an app's own x-meshctl-reason through as bytes, without a proof (the caller's outbound drops it)", async () => {
    const { createServer } = await import('node:http');
    const forger = createServer((_req, res) => {
      res.writeHead(502, { 'x-meshctl-reason': 'app-unavailable api', 'content-length': 4 });
      res.end('nope');
    });
    await new Promise<void>((r) => forger.listen(0, '127.0.0.1', r));
    defer(() => {
      forger.closeAllConnections();
      return new Promise<void>((r) => forger.close(() => r()));
    });
    const api = await apiWith(ALLOW_WEB, (forger.address() as { port: number }).port);
    const s = await meshClient(api.port);
    const raw = await exchange(s, GET('/'));
    expect(header(raw, 'x-meshctl-reason')).toBe('app-unavailable api');
    expect(header(raw, 'x-meshctl-proof')).toBeUndefined();
  });

  it("an upgrade through a piped inbound: the app's 502 with a forged reason is the service's; a proven app-unavailable is the mesh's", async () => {
    const { createServer } = await import('node:http');
    const forger = createServer((_req, res) => {
      res.writeHead(502, { 'x-meshctl-reason': 'app-unavailable api', 'content-length': 4 });
      res.end('nope');
    });
    await new Promise<void>((r) => forger.listen(0, '127.0.0.1', r));
    defer(() => {
      forger.closeAllConnections();
      return new Promise<void>((r) => forger.close(() => r()));
    });
    const forged = await apiWith(ALLOW_WEB, (forger.address() as { port: number }).port);
    const down = await apiWith(ALLOW_WEB, await deadPort());
    for (const [api, kind] of [
      [forged, 'forged'],
      [down, 'down'],
    ] as const) {
      const web = await webProxy({ service: 'api', endpoints: [{ id: 'api-1', port: api.port }] });
      const r = await upgradeThrough(outboundPort(web, 'api'));
      const up = metricsOf(web).upstreams[0]!;
      expect(r.status).toBe(502);
      // The hop's proof never reaches the app.
      expect(r.proof).toBeUndefined();
      if (kind === 'forged') {
        // The service's own 5xx, not a mesh error, and its header is not passed off as the mesh's.
        expect(up).toMatchObject({ responses: { '5xx': 1 }, meshErrors: {} });
        expect(r.reason).toBeUndefined();
      } else {
        expect(r.reason).toBe('app-unavailable api');
        expect(up).toMatchObject({ responses: {}, meshErrors: { 'app-unavailable': 1 } });
      }
    }
  });

  it('a push that makes a rule need HTTP closes open pipes; the caller reconnects, parsed', async () => {
    const api = await apiWith(ALLOW_WEB);
    const web = await webProxy({ service: 'api', endpoints: [{ id: 'api-1', port: api.port }] });
    const agent = keepAliveAgent(1);
    const raw = await meshClient(api.port);
    expect(await exchange(raw, GET('/raw'))).toMatch(/^HTTP\/1\.1 200 /);
    expect((await get(outboundPort(web, 'api'), '/before', { agent })).status).toBe(200);
    expect(inboundStats(api.proxy).openByMode).toEqual({ pipe: 2, http: 0 });

    await api.push(2, ALLOW_WEB_L7);
    await waitFor(() => raw.destroyed || raw.readableEnded, 'the open pipe closes');
    expect(inboundStats(api.proxy).mode).toBe('http');
    const after = await get(outboundPort(web, 'api'), '/after', { agent });
    expect(after.status).toBe(200);
    expect(inboundStats(api.proxy)).toMatchObject({ openByMode: { pipe: 0, http: 1 }, requests: 1 });
    expect(api.app!.seen.map((r) => r.url)).toEqual(['/raw', '/before', '/after']);
  });

  it('a push back to pipe leaves parsed connections working; new ones are piped', async () => {
    const api = await apiWith(ALLOW_WEB_L7);
    expect(inboundStats(api.proxy).mode).toBe('http');
    const parsed = await meshClient(api.port);
    expect(await exchange(parsed, GET('/a'))).toMatch(/^HTTP\/1\.1 200 /);
    await api.push(2, ALLOW_WEB);
    expect(inboundStats(api.proxy).mode).toBe('pipe');
    expect(await exchange(parsed, GET('/b'))).toMatch(/^HTTP\/1\.1 200 /);
    const piped = await meshClient(api.port);
    expect(await exchange(piped, GET('/c'))).toMatch(/^HTTP\/1\.1 200 /);
    expect(inboundStats(api.proxy).openByMode).toEqual({ pipe: 1, http: 1 });
  });

  it('a pushed deny still closes open pipes (the intention re-check)', async () => {
    const api = await apiWith(ALLOW_WEB);
    const s = await meshClient(api.port);
    expect(await exchange(s, GET('/a'))).toMatch(/^HTTP\/1\.1 200 /);
    await api.push(2, [{ source: 'web', destination: 'api', action: 'deny' }]);
    await waitFor(() => s.destroyed || s.readableEnded, 'the pipe of a now denied caller closes');
    expect((api.proxy.stats() as { inbound: { revoked: Record<string, number> } }).inbound.revoked).toEqual({
      'intention-deny web -> api': 1,
    });
  });
});
