/**
 * Access logs end to end: web → api over real mTLS, each proxy writing its own file. Lines
 * are JSON with every field, the W3C traceparent is carried to the app and logged on both
 * sides, and logs that are off write nothing.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isValidTraceparent } from '../../src/proxy/trace.js';
import type { MeshProxy } from '../../src/proxy/proxy.js';
import {
  deadPort,
  defer,
  get,
  inboundPort,
  keepAliveAgent,
  outboundPort,
  snapshot,
  startEchoApp,
  startHttpApp,
  startProxy,
  tcpExchange,
  waitFor,
  type HttpApp,
} from './harness.js';
import { webApiPki } from './web-api.js';

const certs = webApiPki();

type Line = Record<string, unknown>;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-access-log-'));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function lines(path: string): Promise<Line[]> {
  if (!existsSync(path)) return [];
  const text = await readFile(path, 'utf8');
  // Every line must parse on its own.
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

async function waitLines(path: string, n: number): Promise<Line[]> {
  let got: Line[] = [];
  await waitFor(async () => (got = await lines(path)).length >= n, `${n} lines in ${path}`);
  return got;
}

interface Mesh {
  app: HttpApp;
  api: MeshProxy;
  web: MeshProxy;
  port: number;
  apiLog: string;
  webLog: string;
}

async function mesh(
  opts: {
    apiLog?: { enabled: boolean; path?: string } | null;
    webLog?: { enabled: boolean; path?: string } | null;
    intentions?: 'allow' | 'deny';
    protocol?: 'http' | 'tcp';
    appPort?: number;
  } = {},
): Promise<Mesh> {
  const dir = await tempDir();
  const apiLog = join(dir, 'api', 'access.log');
  const webLog = join(dir, 'web-access.log');
  const app = await startHttpApp('api-1');
  const protocol = opts.protocol ?? 'http';
  const api = await startProxy(
    snapshot({
      pki: certs().pki,
      leaf: certs().apiLeaf,
      service: 'api',
      id: 'api-1',
      protocol,
      inboundAddress: '127.0.0.2',
      appPort: opts.appPort ?? app.port,
      intentions: [{ source: 'web', destination: 'api', action: opts.intentions ?? 'allow' }],
      ...(opts.apiLog === null ? {} : { accessLog: opts.apiLog ?? { enabled: true, path: apiLog } }),
    }),
  );
  const web = await startProxy(
    snapshot({
      pki: certs().pki,
      leaf: certs().webLeaf,
      service: 'web',
      appPort: 1,
      upstreams: [
        { service: 'api', protocol, endpoints: [{ id: 'api-1', address: '127.0.0.2', port: inboundPort(api) }] },
      ],
      ...(opts.webLog === null ? {} : { accessLog: opts.webLog ?? { enabled: true, path: webLog } }),
    }),
  );
  return { app, api, web, port: outboundPort(web, 'api'), apiLog, webLog };
}

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('access logs', () => {
  it("writes one JSON line per request on each side, with every field, and carries the caller's traceparent to the app unchanged", async () => {
    const m = await mesh();
    const r = await get(m.port, '/things/7?secret=1', {
      method: 'POST',
      body: 'hello',
      headers: { traceparent: TRACE, tracestate: 'k=v' },
    });
    expect(r.status).toBe(200);
    expect(m.app.seen[0]!.headers.traceparent).toBe(TRACE);
    expect(m.app.seen[0]!.headers.tracestate).toBe('k=v');

    const [out] = await waitLines(m.webLog, 1);
    const [inb] = await waitLines(m.apiLog, 1);
    expect(out).toEqual({
      time: expect.any(String),
      direction: 'outbound',
      protocol: 'http',
      source: 'web',
      destination: 'api',
      method: 'POST',
      path: '/things/7',
      status: 200,
      durationMs: expect.any(Number),
      bytesIn: 5,
      bytesOut: Buffer.byteLength(r.body),
      endpoint: 'api-1',
      attempts: 1,
      traceparent: TRACE,
    });
    expect(inb).toEqual({
      time: expect.any(String),
      direction: 'inbound',
      protocol: 'http',
      source: 'web',
      destination: 'api',
      method: 'POST',
      path: '/things/7',
      status: 200,
      durationMs: expect.any(Number),
      bytesIn: 5,
      bytesOut: Buffer.byteLength(r.body),
      traceparent: TRACE,
    });
    for (const l of [out!, inb!]) {
      expect(Number.isNaN(Date.parse(l.time as string))).toBe(false);
      expect(l.durationMs as number).toBeGreaterThan(0);
    }
  });

  it('starts a traceparent when there is none, and the app and both lines have the same one', async () => {
    const m = await mesh();
    const agent = keepAliveAgent(1);
    await get(m.port, '/a', { agent });
    await get(m.port, '/b', { agent });
    const seen = m.app.seen.map((s) => s.headers.traceparent as string);
    expect(seen.every(isValidTraceparent)).toBe(true);
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen[0]!.endsWith('-01')).toBe(true);
    const out = await waitLines(m.webLog, 2);
    const inb = await waitLines(m.apiLog, 2);
    expect(out.map((l) => l.traceparent)).toEqual(seen);
    expect(inb.map((l) => l.traceparent)).toEqual(seen);
  });

  it('replaces a malformed traceparent (and drops its tracestate)', async () => {
    const m = await mesh();
    const bad = [
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      'garbage',
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    ];
    for (const tp of bad) await get(m.port, '/', { headers: { traceparent: tp, tracestate: 'k=v' } });
    const seen = m.app.seen.map((s) => s.headers);
    for (const [i, h] of seen.entries()) {
      expect(isValidTraceparent(h.traceparent)).toBe(true);
      expect(h.traceparent).not.toBe(bad[i]);
      expect(h.tracestate).toBeUndefined();
    }
    const out = await waitLines(m.webLog, bad.length);
    expect(out.map((l) => l.traceparent)).toEqual(seen.map((h) => h.traceparent));
  });

  it('flags what resilience did on the outbound line: a retried gateway error after 2 attempts', async () => {
    // The app is down: the api sidecar answers 502 app-unavailable, a gateway error, retried once.
    const m = await mesh({ appPort: await deadPort(), apiLog: null });
    expect((await get(m.port, '/x')).status).toBe(502);
    const [out] = await waitLines(m.webLog, 1);
    expect(out).toMatchObject({ status: 502, reason: 'app-unavailable api', attempts: 2, flags: ['retried'] });
  });

  it('names the reason when the mesh answered: a deny on both sides, no endpoints on the outbound side', async () => {
    const m = await mesh({ intentions: 'deny' });
    const r = await get(m.port, '/private', { headers: { traceparent: TRACE } });
    expect(r.status).toBe(403);
    const [out] = await waitLines(m.webLog, 1);
    const [inb] = await waitLines(m.apiLog, 1);
    expect(out).toMatchObject({
      direction: 'outbound',
      status: 403,
      reason: 'intention-deny web -> api',
      endpoint: 'api-1',
      traceparent: TRACE,
    });
    expect(inb).toMatchObject({
      direction: 'inbound',
      source: 'web',
      destination: 'api',
      path: '/private',
      status: 403,
      reason: 'intention-deny web -> api',
      traceparent: TRACE,
    });
    expect(m.app.seen).toHaveLength(0);

    const dir = await tempDir();
    const path = join(dir, 'none.log');
    const lonely = await startProxy(
      snapshot({
        pki: certs().pki,
        leaf: certs().webLeaf,
        service: 'web',
        appPort: 1,
        upstreams: [{ service: 'api', endpoints: [] }],
        accessLog: { enabled: true, path },
      }),
    );
    expect((await get(outboundPort(lonely, 'api'), '/')).status).toBe(503);
    const [none] = await waitLines(path, 1);
    expect(none).toMatchObject({ status: 503, reason: 'no-healthy-endpoints api', destination: 'api' });
    expect(none!.endpoint).toBeUndefined();
  });

  it('tcp: one line per connection on each side, with bytes, duration and peer', async () => {
    const echo = await startEchoApp('echo:');
    const m = await mesh({ protocol: 'tcp', appPort: echo.port });
    expect(await tcpExchange(m.port, 'hello', { halfClose: true })).toBe('echo:hellobye:5');
    const [out] = await waitLines(m.webLog, 1);
    const [inb] = await waitLines(m.apiLog, 1);
    expect(out).toEqual({
      time: expect.any(String),
      direction: 'outbound',
      protocol: 'tcp',
      source: 'web',
      destination: 'api',
      durationMs: expect.any(Number),
      bytesIn: 5,
      bytesOut: 'echo:hellobye:5'.length,
      endpoint: 'api-1',
      peer: `127.0.0.2:${inboundPort(m.api)}`,
    });
    expect(inb).toEqual({
      time: expect.any(String),
      direction: 'inbound',
      protocol: 'tcp',
      source: 'web',
      destination: 'api',
      durationMs: expect.any(Number),
      bytesIn: 5,
      bytesOut: 'echo:hellobye:5'.length,
      peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
  });

  it('off: no file is written, with the setting absent or disabled', async () => {
    const m = await mesh({ apiLog: { enabled: false, path: join(await tempDir(), 'api.log') }, webLog: null });
    for (let i = 0; i < 3; i++)
      expect((await get(m.port, '/', { headers: { traceparent: 'garbage' } })).status).toBe(200);
    // Off means hands off: the header goes through as the caller sent it.
    expect(m.app.seen.map((s) => s.headers.traceparent)).toEqual(['garbage', 'garbage', 'garbage']);
    expect(m.api.accessLog.target).toBeUndefined();
    expect(m.web.accessLog.target).toBeUndefined();
    expect(existsSync(m.webLog)).toBe(false);
    expect(existsSync(m.apiLog)).toBe(false);
  });

  it('follows the snapshot: switched on, moved to another file, switched off', async () => {
    const dir = await tempDir();
    const first = join(dir, 'first.log');
    const second = join(dir, 'second.log');
    const app = await startHttpApp('api-1');
    const snap = (version: number, accessLog?: { enabled: boolean; path?: string }) =>
      snapshot({
        version,
        pki: certs().pki,
        leaf: certs().webLeaf,
        service: 'web',
        appPort: app.port,
        upstreams: [{ service: 'api', endpoints: [] }],
        ...(accessLog ? { accessLog } : {}),
      });
    const web = await startProxy(snap(1));
    const port = outboundPort(web, 'api');
    await get(port, '/off-1');
    await web.apply(snap(2, { enabled: true, path: first }));
    await get(port, '/first');
    await web.apply(snap(3, { enabled: true, path: second }));
    await get(port, '/second');
    await web.apply(snap(4, { enabled: false, path: second }));
    await get(port, '/off-2');
    expect((await waitLines(first, 1)).map((l) => l.path)).toEqual(['/first']);
    expect((await waitLines(second, 1)).map((l) => l.path)).toEqual(['/second']);
    // The file is closed once off; nothing more arrives.
    await new Promise((r) => setTimeout(r, 100));
    expect((await lines(second)).map((l) => l.path)).toEqual(['/second']);
  });

  it('an unwritable path turns logging off with a warning and traffic keeps flowing', async () => {
    const dir = await tempDir();
    const blocker = join(dir, 'not-a-dir');
    await (await import('node:fs/promises')).writeFile(blocker, 'x');
    const m = await mesh({ webLog: { enabled: true, path: join(blocker, 'web.log') } });
    for (let i = 0; i < 3; i++) expect((await get(m.port, `/${i}`)).status).toBe(200);
    await waitFor(() => !m.web.accessLog.on, 'logging switched off');
    expect((await get(m.port, '/after')).status).toBe(200);
  });
});

describe('access logs with an app that is down', () => {
  it('logs app-unavailable on the inbound side', async () => {
    const m = await mesh({ appPort: await deadPort() });
    expect((await get(m.port, '/')).status).toBe(502);
    const [inb] = await waitLines(m.apiLog, 1);
    expect(inb).toMatchObject({ direction: 'inbound', status: 502, reason: 'app-unavailable api' });
  });
});
