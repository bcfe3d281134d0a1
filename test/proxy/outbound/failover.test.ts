/**
 * Failover on `502 app-unavailable` (src/proxy/outbound): web → api with two instances, each
 * behind its own proxy on its own loopback address, over real sockets and real mTLS. A request
 * whose instance's app is down goes to the other instance (a body is replayed up to 64 KiB);
 * only the mesh's own reason triggers it, never an app's forged header.
 */
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { ProxyMetrics } from '../../../src/api/metrics.js';
import type { MeshProxy } from '../../../src/proxy/proxy.js';
import { deadPort, defer, get, keepAliveAgent, outboundPort } from '../harness.js';
import { webApiFixture } from '../web-api.js';

/** One attempt per request: these tests count attempts (retries have their own tests). */
const NO_RETRIES = { retry: { numRetries: 0 } };

const { apiInstance, webProxy } = webApiFixture();

function metrics(p: MeshProxy): Omit<ProxyMetrics, 'node'> {
  // Through JSON, as the agent gets it.
  return JSON.parse(JSON.stringify(p.metrics())) as Omit<ProxyMetrics, 'node'>;
}

describe('failover on app-unavailable', () => {
  it('a stopped app on one instance fails no request while the other is healthy, with or without a body', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const b = await apiInstance('api-2', '127.0.0.3');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint, b.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(2);
    // Warm both pools (web → both proxies, each proxy → its app), then stop api-1's app.
    for (let i = 0; i < 4; i++) expect((await get(port, '/warm', { agent })).status).toBe(200);
    await a.app!.close();

    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'GET', 'POST', 'GET'];
    for (const [i, method] of methods.entries()) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : `payload-${i}-${'x'.repeat(i * 1000)}`;
      const r = await get(port, `/f${i}`, { agent, method, body });
      expect(r.status, `${method} /f${i}`).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ app: 'api-2', url: `/f${i}`, body: body ?? '' });
    }
    const up = metrics(web).upstreams[0]!;
    expect(up.meshErrors).toEqual({});
    expect(up.responses).toEqual({ '2xx': 12 });
    expect(up.requests).toBe(12);
    const e1 = up.endpoints.find((e) => e.endpoint === 'api-1')!;
    expect(e1.meshErrors['app-unavailable']).toBeGreaterThanOrEqual(3);
    expect(metrics(a.proxy).inbound.meshErrors['app-unavailable']).toBe(e1.meshErrors['app-unavailable']);
    // Every body reached api-2 whole, once.
    expect(b.app!.seen.filter((s) => s.url.startsWith('/f')).map((s) => s.url)).toEqual(
      methods.map((_, i) => `/f${i}`),
    );
  });

  it('does not send a body over 64 KiB twice: the 502 goes back to the caller', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { appPort: await deadPort() });
    const b = await apiInstance('api-2', '127.0.0.3');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint, b.endpoint] });
    const port = outboundPort(web, 'api');
    const big = 'y'.repeat(100 * 1024);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await get(port, '/big', { method: 'POST', body: big })).status);
    // Round robin sends one of the two to the instance whose app is down.
    expect(statuses.sort()).toEqual([200, 502]);
    expect(b.app!.seen.filter((s) => s.url === '/big')).toHaveLength(1);
    expect(metrics(web).upstreams[0]!.meshErrors).toEqual({ 'app-unavailable': 1 });
  });

  it("every app down: the last instance's 502 app-unavailable reaches the caller", async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { appPort: await deadPort() });
    const b = await apiInstance('api-2', '127.0.0.3', { appPort: await deadPort() });
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint, b.endpoint] });
    const r = await get(outboundPort(web, 'api'), '/', { method: 'POST', body: 'z' });
    expect(r.status).toBe(502);
    expect(r.headers['x-meshctl-reason']).toBe('app-unavailable api');
    const up = metrics(web).upstreams[0]!;
    expect(up).toMatchObject({ requests: 1, meshErrors: { 'app-unavailable': 1 } });
    expect(up.endpoints.map((e) => e.meshErrors)).toEqual([{ 'app-unavailable': 1 }, { 'app-unavailable': 1 }]);
  });
});

describe('only the mesh says why', () => {
  it("an app's own x-meshctl-reason is dropped: its 502 is the service's answer, not failed over", async () => {
    const app = createServer((_req, res) => {
      res.writeHead(502, { 'x-meshctl-reason': 'app-unavailable api', 'content-length': 4 });
      res.end('nope');
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    defer(
      () =>
        new Promise<void>((r) => {
          app.closeAllConnections();
          app.close(() => r());
        }),
    );
    const a = await apiInstance('api-1', '127.0.0.2', { appPort: (app.address() as { port: number }).port });
    const b = await apiInstance('api-2', '127.0.0.3');
    // Retries off: this is about failover (a retry of the 502 is a policy, not this).
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint, b.endpoint], resilience: NO_RETRIES });
    const replies = [await get(outboundPort(web, 'api'), '/'), await get(outboundPort(web, 'api'), '/')];
    const forged = replies.find((r) => r.status === 502)!;
    expect(forged.body).toBe('nope');
    expect(forged.headers['x-meshctl-reason']).toBeUndefined();
    expect(metrics(web).upstreams[0]).toMatchObject({ requests: 2, responses: { '2xx': 1, '5xx': 1 }, meshErrors: {} });
    // The piped inbound saw no request, and made no answer of its own.
    expect(metrics(a.proxy).inbound).toMatchObject({ requests: 0, responses: {}, meshErrors: {} });
  });
});
