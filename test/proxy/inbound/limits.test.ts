/**
 * The mesh port's limits: a misbehaving client costs the sidecar a bounded amount and gets a
 * clear end. A head over the limit gets 431 and a log line; a client that drips its head is
 * cut at the header timeout; handshakes in progress and connections held are bounded, and a
 * connection over a bound is closed at once and counted. Limits are set small here so the
 * test stays short; the defaults are in src/proxy/inbound/listener.ts.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../../src/proxy/proxy.js';
import { defer, inboundPort, snapshot, startHttpApp, startProxy, waitFor, type HttpApp } from '../harness.js';
import { webApiPki } from '../web-api.js';

const certs = webApiPki();

function refusals(p: MeshProxy): Record<string, number> {
  return (p.stats() as { inbound: { refusals: Record<string, number> } }).inbound.refusals;
}

/** A logger whose lines the test reads. */
function capturingLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { log, lines };
}

/** A mesh client (web's certificate) on the api proxy's mesh port; resolves once the handshake is done. */
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

/** Everything the server sends until it closes. */
function untilClose(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve(data));
  });
}

/**
 * An L7 intention that lets every request in: the inbound then parses HTTP (inbound/mode.ts),
 * which is where the head limits apply. A piped inbound leaves the head to the app's own server
 * and its limits, as the L4 inbound does; the callers' outbound sidecars apply these limits to
 * what their apps send.
 */
const PARSED = [
  { source: '*', destination: 'api', action: 'allow' as const, permissions: [{ action: 'allow' as const }] },
];

async function apiProxy(
  opts: Parameters<typeof startProxy>[1] = {},
  intentions: typeof PARSED = [],
): Promise<{ app: HttpApp; api: MeshProxy }> {
  const app = await startHttpApp('api-1');
  const api = await startProxy(
    snapshot({
      pki: certs().pki,
      leaf: certs().apiLeaf,
      service: 'api',
      appPort: app.port,
      defaultIntention: 'allow',
      intentions,
    }),
    opts,
  );
  return { app, api };
}

describe('inbound limits', () => {
  it('answers a 100 KB header block with 431 and a log line; the app sees nothing', async () => {
    const { log, lines } = capturingLogger();
    const { app, api } = await apiProxy({ log }, PARSED);
    const s = await meshClient(inboundPort(api));
    const reply = untilClose(s);
    s.write(`GET / HTTP/1.1\r\nHost: api\r\nx-big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
    const text = await reply;
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(text).toContain('x-meshctl-reason: request-head-too-large');
    expect(app.seen).toEqual([]);
    expect(lines.some((l) => l.reason === 'request-head-too-large' && l.level === 40)).toBe(true);
  });

  it('cuts a client that sends its head one byte at a time, at the header timeout, with 408', async () => {
    const { app, api } = await apiProxy({ inboundLimits: { headersTimeoutMs: 500 } }, PARSED);
    const s = await meshClient(inboundPort(api));
    const reply = untilClose(s);
    const head = 'GET / HTTP/1.1\r\nHost: api\r\nx-slow: ' + 'b'.repeat(200);
    let i = 0;
    const drip = setInterval(() => {
      if (i < head.length && !s.destroyed) s.write(head[i++]!);
    }, 50);
    defer(() => clearInterval(drip));
    const text = await reply;
    clearInterval(drip);
    // Cut before the head could ever be complete: it has no end.
    expect(i).toBeLessThan(head.length);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('x-meshctl-reason: request-header-timeout');
    expect(app.seen).toEqual([]);
  });

  it('bounds the handshakes in progress: the ones over the bound are closed at once and counted', async () => {
    const { api } = await apiProxy({ inboundLimits: { maxPendingHandshakes: 4 } });
    const port = inboundPort(api);
    // Silent TCP connections: each sits in its handshake until the handshake timeout.
    const silent: Socket[] = [];
    const closed: Array<Promise<string>> = [];
    for (let n = 0; n < 8; n++) {
      const s = netConnect(port, '127.0.0.1');
      defer(() => s.destroy());
      await new Promise((r) => s.once('connect', r));
      silent.push(s);
      closed.push(untilClose(s));
    }
    await waitFor(() => refusals(api)['too-many-handshakes'] === 4, 'four handshakes refused');
    await Promise.all(closed.slice(4));
    expect(api.inbound.pendingHandshakes).toBe(4);
    // Once they go, handshakes are served again, and finished ones do not count as pending.
    for (const s of silent) s.destroy();
    await waitFor(() => api.inbound.pendingHandshakes === 0, 'no handshake pending');
    const held = [];
    for (let n = 0; n < 6; n++) held.push(await meshClient(port));
    // (TLS 1.3: the server finishes a moment after the client.)
    await waitFor(() => api.inbound.pendingHandshakes === 0, 'six handshakes done, none pending');
    expect(held.every((s) => !s.destroyed)).toBe(true);
    expect(refusals(api)['too-many-handshakes']).toBe(4);
  });

  it('bounds the connections a listener holds: one over the bound is closed and counted', async () => {
    const { api } = await apiProxy({ inboundLimits: { maxConnections: 3 } });
    const port = inboundPort(api);
    const held = [await meshClient(port), await meshClient(port), await meshClient(port)];
    expect(held.every((s) => !s.destroyed)).toBe(true);
    const extra = netConnect(port, '127.0.0.1');
    defer(() => extra.destroy());
    await untilClose(extra);
    await waitFor(() => refusals(api)['too-many-connections'] === 1, 'the fourth connection refused');
    // The held ones still serve.
    const reply = untilClose(held[0]!);
    held[0]!.write('GET /x HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    expect(await reply).toMatch(/^HTTP\/1\.1 200 /);
  });
});
