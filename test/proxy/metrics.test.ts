/**
 * The proxies' figures (`GET /metrics`, the contract of src/api/metrics.ts) after known
 * traffic over real sockets and real mTLS: web → api with two instances, each behind its own
 * proxy on its own loopback address. The failover on `502 app-unavailable` is in
 * test/proxy/outbound/failover.test.ts.
 */
import { connect as netConnect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import type { ProxyMetrics, TrafficCounters } from '../../src/api/metrics.js';
import { runProxy } from '../../src/proxy/main.js';
import type { MeshProxy } from '../../src/proxy/proxy.js';
import { silentLogger } from '../../src/util/log.js';
import {
  deadPort,
  defer,
  get,
  keepAliveAgent,
  outboundPort,
  snapshot,
  startEchoApp,
  startHttpApp,
  tcpExchange,
  waitFor,
  type HttpApp,
} from './harness.js';
import { ALLOW_WEB_L7, webApiFixture } from './web-api.js';

/** One attempt per request: these tests count attempts (retries have their own tests). */
const NO_RETRIES = { retry: { numRetries: 0 } };

const { apiInstance, webProxy, certs } = webApiFixture();

function metrics(p: MeshProxy): Omit<ProxyMetrics, 'node'> {
  // Through JSON, as the agent gets it.
  return JSON.parse(JSON.stringify(p.metrics())) as Omit<ProxyMetrics, 'node'>;
}

function histogram(c: TrafficCounters): hdr.Histogram {
  expect(c.latency).not.toBe('');
  return hdr.decodeFromCompressedBase64(c.latency);
}

function sum(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

describe('proxy metrics: web → api', () => {
  it('counts requests, classes, mesh errors and latency per upstream, per endpoint and on the inbound side', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const b = await apiInstance('api-2', '127.0.0.3');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint, b.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);

    for (let i = 0; i < 10; i++) expect((await get(port, `/ok/${i}`, { agent })).status).toBe(200);
    expect((await get(port, '/status/500', { agent })).status).toBe(500);
    // The app waits 300 ms here: a lower bound for the largest recorded latency.
    expect((await get(port, '/slow', { agent })).status).toBe(200);
    await b.deny();
    const after = [await get(port, '/x', { agent }), await get(port, '/y', { agent })];
    expect(after.map((r) => r.status).sort()).toEqual([200, 403]);
    expect(after.find((r) => r.status === 403)!.headers['x-meshctl-reason']).toBe('default-deny web -> api');

    const m = metrics(web);
    expect(m).toMatchObject({ service: 'web', serviceId: 'web-1' });
    expect(m.upstreams).toHaveLength(1);
    const up = m.upstreams[0]!;
    expect(up.service).toBe('api');
    expect(up.requests).toBe(14);
    // The service's answers by class; the deny is the mesh's answer, counted once, under its reason.
    expect(up.responses).toEqual({ '2xx': 12, '5xx': 1 });
    expect(up.meshErrors).toEqual({ 'default-deny': 1 });
    expect(up.activeConnections).toBe(1);
    expect(up.totalConnections).toBe(1);
    expect(up.bytesIn).toBeGreaterThan(0);
    expect(up.bytesOut).toBeGreaterThan(0);
    const h = histogram(up);
    expect(h.totalCount).toBe(14);
    expect(h.minNonZeroValue).toBeGreaterThan(0);
    expect(h.getValueAtPercentile(99)).toBeGreaterThanOrEqual(290_000);
    expect(h.maxValue).toBeGreaterThanOrEqual(290_000);

    // Per endpoint: strict round robin over the two, and the deny on api-2.
    const byId = Object.fromEntries(up.endpoints.map((e) => [e.endpoint, e]));
    expect(Object.keys(byId).sort()).toEqual(['api-1', 'api-2']);
    const e1 = byId['api-1']!;
    const e2 = byId['api-2']!;
    expect(e1.requests).toBe(7);
    expect(e2.requests).toBe(7);
    expect(e2.meshErrors).toEqual({ 'default-deny': 1 });
    expect(e1.meshErrors).toEqual({});
    expect(sum(e1.responses) + sum(e2.responses)).toBe(13);
    expect((e1.responses['5xx'] ?? 0) + (e2.responses['5xx'] ?? 0)).toBe(1);
    expect(histogram(e1).totalCount + histogram(e2).totalCount).toBe(14);
    expect(e1.totalConnections).toBe(1);
    // The deny pushed to api-2 closed the pooled connection; the next request opened a new one.
    expect(e2.totalConnections).toBe(2);

    // The inbound of each instance pipes bytes (no rule needs HTTP there): it counts connections
    // and bytes, and the mesh's own answer (the deny) where it made it; requests are the callers'.
    const ia = metrics(a.proxy).inbound;
    const ib = metrics(b.proxy).inbound;
    expect(a.proxy.stats()).toMatchObject({ inbound: { mode: 'pipe' } });
    expect(ia.requests).toBe(0);
    expect(ia.responses).toEqual({});
    expect(ia.latency).toBe('');
    expect(ib.requests).toBe(1);
    expect(ib.meshErrors).toEqual({ 'default-deny': 1 });
    expect(histogram(ib).totalCount).toBe(1);
    expect(ia.totalConnections).toBe(1);
    expect(ib.totalConnections).toBe(2);
    expect(ia.tlsFailures).toEqual({});
    expect(ia.bytesIn).toBeGreaterThan(0);
    expect(ia.bytesOut).toBeGreaterThan(0);
    expect(m.inbound.requests).toBe(0);
    expect(m.inbound.latency).toBe('');
    await waitFor(
      () => metrics(web).upstreams[0]!.endpoints.every((e) => e.activeConnections <= 1),
      'connections settle',
    );
  });

  it('an http inbound that parses (a rule needs HTTP there) counts every request of a keep-alive connection', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { intentions: ALLOW_WEB_L7 });
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const agent = keepAliveAgent(1);
    for (let i = 0; i < 5; i++)
      await get(outboundPort(web, 'api'), `/k${i}`, {
        agent,
        method: i % 2 ? 'POST' : 'GET',
        body: i % 2 ? 'some body' : undefined,
      });
    expect(a.proxy.stats()).toMatchObject({ inbound: { mode: 'http', openByMode: { pipe: 0, http: 1 } } });
    const ib = metrics(a.proxy).inbound;
    expect(ib.requests).toBe(5);
    expect(ib.responses).toEqual({ '2xx': 5 });
    expect(ib.totalConnections).toBe(1);
    expect(histogram(ib).totalCount).toBe(5);
    // The app saw one connection from its proxy's pool, and every request.
    expect(a.app!.connections).toBe(1);
    expect(a.app!.seen.map((r) => r.url)).toEqual(['/k0', '/k1', '/k2', '/k3', '/k4']);
  });

  it('an http inbound that pipes counts the connection and its bytes, and the app sees every request on it', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const agent = keepAliveAgent(1);
    for (let i = 0; i < 5; i++)
      await get(outboundPort(web, 'api'), `/k${i}`, {
        agent,
        method: i % 2 ? 'POST' : 'GET',
        body: i % 2 ? 'some body' : undefined,
      });
    expect(a.proxy.stats()).toMatchObject({ inbound: { mode: 'pipe', openByMode: { pipe: 1, http: 0 } } });
    const ib = metrics(a.proxy).inbound;
    expect(ib).toMatchObject({ requests: 0, responses: {}, meshErrors: {}, totalConnections: 1, activeConnections: 1 });
    expect(ib.bytesIn).toBeGreaterThan(5 * 40);
    expect(ib.bytesOut).toBeGreaterThan(5 * 40);
    // The caller's outbound counted each request, with the app's answer.
    expect(metrics(web).upstreams[0]).toMatchObject({ requests: 5, responses: { '2xx': 5 } });
    expect(a.app!.connections).toBe(1);
    expect(a.app!.seen.map((r) => r.url)).toEqual(['/k0', '/k1', '/k2', '/k3', '/k4']);
  });

  it('answers 502 app-unavailable per request when the app is down, and counts it', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { appPort: await deadPort() });
    // Retries off: one attempt per request (a gateway error is retried by default).
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint], resilience: NO_RETRIES });
    const agent = keepAliveAgent(1);
    for (let i = 0; i < 2; i++) {
      const r = await get(outboundPort(web, 'api'), '/', { agent });
      expect(r.status).toBe(502);
      expect(r.headers['x-meshctl-reason']).toBe('app-unavailable api');
    }
    const ib = metrics(a.proxy).inbound;
    // Each answer closes its connection (the app may be back by the next one).
    expect(ib).toMatchObject({ requests: 2, responses: {}, meshErrors: { 'app-unavailable': 2 }, totalConnections: 2 });
    const up = metrics(web).upstreams[0]!;
    expect(up).toMatchObject({ requests: 2, responses: {}, meshErrors: { 'app-unavailable': 2 } });
  });

  it('counts mesh errors of the outbound side by reason: no endpoints, connect failure', async () => {
    const none = await webProxy({ service: 'api', endpoints: [] });
    expect((await get(outboundPort(none, 'api'))).status).toBe(503);
    expect(metrics(none).upstreams[0]).toMatchObject({
      requests: 1,
      responses: {},
      meshErrors: { 'no-healthy-endpoints': 1 },
      endpoints: [],
    });

    const dead = await webProxy({
      service: 'api',
      endpoints: [{ id: 'dead-1', port: await deadPort() }],
      resilience: NO_RETRIES,
    });
    expect((await get(outboundPort(dead, 'api'))).status).toBe(502);
    const up = metrics(dead).upstreams[0]!;
    expect(up).toMatchObject({ requests: 1, meshErrors: { 'connect-failure': 1 } });
    expect(up.endpoints[0]).toMatchObject({
      endpoint: 'dead-1',
      requests: 1,
      meshErrors: { 'connect-failure': 1 },
      totalConnections: 0,
    });
    expect(histogram(up.endpoints[0]!).totalCount).toBe(1);
  });

  it('tcp: every connection is a request, timed from open to close, on both sides', async () => {
    const echo = await startEchoApp('echo:');
    const a = await apiInstance('api-1', '127.0.0.2', { protocol: 'tcp', appPort: echo.port });
    const web = await webProxy({ service: 'api', protocol: 'tcp', endpoints: [a.endpoint] });
    for (let i = 0; i < 3; i++)
      expect(await tcpExchange(outboundPort(web, 'api'), `hi${i}`, { halfClose: true })).toBe(`echo:hi${i}bye:3`);
    await waitFor(
      () => metrics(a.proxy).inbound.activeConnections === 0 && histogram(metrics(a.proxy).inbound).totalCount === 3,
      'connections closed on the api side',
    );
    await waitFor(() => metrics(web).upstreams[0]!.activeConnections === 0, 'connections closed on the web side');
    const up = metrics(web).upstreams[0]!;
    expect(up).toMatchObject({ requests: 3, responses: {}, meshErrors: {}, totalConnections: 3 });
    expect(histogram(up).totalCount).toBe(3);
    // Towards the upstream: 3 × "hiN"; back from it: 3 × "echo:hiN" + "bye:3".
    expect(up.bytesOut).toBe(9);
    expect(up.bytesIn).toBe(3 * 'echo:hi0bye:3'.length);
    expect(up.endpoints[0]).toMatchObject({ endpoint: 'api-1', requests: 3, totalConnections: 3 });
    expect(histogram(up.endpoints[0]!).totalCount).toBe(3);
    const ib = metrics(a.proxy).inbound;
    expect(ib).toMatchObject({ requests: 3, responses: {}, meshErrors: {}, totalConnections: 3 });

    const down = await webProxy({
      service: 'api',
      protocol: 'tcp',
      endpoints: [{ id: 'dead-1', port: await deadPort() }],
    });
    expect(await tcpExchange(outboundPort(down, 'api'), 'x')).toBe('');
    expect(metrics(down).upstreams[0]).toMatchObject({ requests: 1, meshErrors: { 'connect-failure': 1 } });
  });

  it('counts refused handshakes under tlsFailures, not as requests', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    await new Promise<void>((resolve) => {
      const s = netConnect({ host: '127.0.0.2', port: a.endpoint.port }, () =>
        s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'),
      );
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    await waitFor(() => metrics(a.proxy).inbound.tlsFailures['plaintext'] === 1, 'the refusal counted');
    expect(metrics(a.proxy).inbound.requests).toBe(0);
  });
});

describe('GET /metrics on the admin socket', () => {
  it('is 404 before the first snapshot, then serves the contract shape', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshctl-proxy-metrics-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const sock = join(dir, 'p.sock');
    const running = await runProxy({ adminSocket: sock, handleSignals: false, log: silentLogger(), drainMs: 500 });
    defer(() => running.shutdown(0));
    const ask = () =>
      new Promise<{ status: number; json: any }>((resolve, reject) => {
        const req = request({ socketPath: sock, path: '/metrics' }, (res) => {
          let t = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (t += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t) }));
        });
        req.on('error', reject);
        req.end();
      });
    const before = await ask();
    expect(before.status).toBe(404);
    expect(before.json.error.code).toBe('MESH_ERR_NOT_FOUND');

    const app: HttpApp = await startHttpApp('api-1');
    await running.proxy.apply(
      snapshot({
        pki: certs().pki,
        leaf: certs().webLeaf,
        service: 'web',
        id: 'web-7',
        appPort: app.port,
        upstreams: [{ service: 'api', endpoints: [{ id: 'api-1', port: 1 }] }],
      }),
    );
    const after = await ask();
    expect(after.status).toBe(200);
    const empty = {
      requests: 0,
      responses: {},
      meshErrors: {},
      activeConnections: 0,
      totalConnections: 0,
      bytesIn: 0,
      bytesOut: 0,
      latency: '',
    };
    expect(after.json).toEqual({
      service: 'web',
      serviceId: 'web-7',
      inbound: { ...empty, tlsFailures: {} },
      upstreams: [{ service: 'api', ...empty, endpoints: [{ endpoint: 'api-1', node: 'node-1', ...empty }] }],
    });
  });
});
