/**
 * Outbound → inbound end to end, in one process, over real sockets and real mTLS: a `web`
 * proxy whose upstream `api` has two instances, each an `api` proxy (on its own loopback
 * address, like two hosts) in front of a small app.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../src/proxy/proxy.js';
import {
  deadPort,
  get,
  keepAliveAgent,
  outboundPort,
  snapshot,
  startEchoApp,
  tcpExchange,
  waitFor,
} from './harness.js';
import { ALLOW_WEB, webApiFixture, webApiPki } from './web-api.js';

const certs = webApiPki();

const { apiInstance, webProxy } = webApiFixture(certs);

function stats(p: MeshProxy) {
  return p.stats() as {
    inbound: {
      connections: { active: number; total: number };
      refusals: Record<string, number>;
      revoked: Record<string, number>;
    };
    upstreams: Record<
      string,
      {
        requests: number;
        responses: Record<string, number>;
        errors: Record<string, number>;
        endpoints: Record<
          string,
          {
            requests: number;
            connections: { active: number; total: number };
            connectFailures: Record<string, number>;
            inFlight: number;
          }
        >;
      }
    >;
  };
}

describe('proxy e2e: web → api over mTLS', () => {
  it('round robin alternates between both instances, over few pooled TLS connections', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const b = await apiInstance('api-2', '127.0.0.3');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint, b.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);

    const apps: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await get(port, `/hello/${i}`, { agent });
      expect(r.status).toBe(200);
      apps.push((JSON.parse(r.body) as { app: string }).app);
    }
    // Strict alternation: each reply comes from the other instance than the one before.
    for (let i = 1; i < apps.length; i++) expect(apps[i]).not.toBe(apps[i - 1]);
    expect(new Set(apps)).toEqual(new Set(['api-1', 'api-2']));

    // Keep-alive: 40 requests, one at a time, reuse one mTLS connection per endpoint.
    const s = stats(web).upstreams.api!;
    expect(s.requests).toBe(40);
    expect(s.responses['2xx']).toBe(40);
    expect(s.endpoints['api-1']!.connections.total).toBe(1);
    expect(s.endpoints['api-2']!.connections.total).toBe(1);
    expect(stats(a.proxy).inbound.connections.total).toBe(1);
    expect(a.app!.connections + b.app!.connections).toBe(2);
    await waitFor(() => s.endpoints['api-1']!.inFlight === 0, 'in-flight back to 0');
  });

  it('forwards method, path, body and sets x-forwarded-*, without hop-by-hop headers', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const r = await get(outboundPort(web, 'api'), '/things?x=1', {
      method: 'POST',
      body: 'payload',
      headers: {
        'content-type': 'text/plain',
        connection: 'keep-alive, x-secret',
        'x-secret': 'hop',
        'keep-alive': 'timeout=9',
        host: 'api.local',
      },
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ app: 'api-1', url: '/things?x=1', body: 'payload' });
    const seen = a.app!.seen.at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('api.local');
    expect(seen.headers['x-secret']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(r.headers['x-app']).toBe('api-1');
  });

  it('upgrades a WebSocket end to end and pipes both ways', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const key = Buffer.from('0123456789abcdef').toString('base64');
    const { status, headers, echoed } = await new Promise<{
      status: number;
      headers: Record<string, unknown>;
      echoed: string;
    }>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: outboundPort(web, 'api'),
        path: '/ws',
        agent: false,
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-key': key,
          'sec-websocket-version': '13',
        },
      });
      req.on('error', reject);
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('upgrade', (res, socket) => {
        let got = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          got += d;
          if (got === 'PING-1PING-2') {
            socket.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, echoed: got });
          }
        });
        socket.write('ping-1');
        setTimeout(() => socket.write('ping-2'), 20);
      });
      req.end();
    });
    expect(status).toBe(101);
    expect(headers['sec-websocket-accept']).toBe(
      createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'),
    );
    expect(headers['x-app']).toBe('api-1');
    expect(echoed).toBe('PING-1PING-2');
  });

  it('L4: a TCP upstream is a byte pipe with half-close', async () => {
    const echo = await startEchoApp('echo:');
    const a = await apiInstance('api-1', '127.0.0.2', { protocol: 'tcp', appPort: echo.port });
    const web = await webProxy({ service: 'api', protocol: 'tcp', endpoints: [a.endpoint] });
    const got = await tcpExchange(outboundPort(web, 'api'), 'hello', { halfClose: true });
    // The echo app only says bye after our FIN crossed both proxies, and its answer came back after it.
    expect(got).toBe('echo:hellobye:5');
    await waitFor(
      () => stats(web).upstreams.api!.endpoints['api-1']!.connections.active === 0,
      'upstream connection closed',
    );
  });

  it('default deny → 403 with the reason; a pushed allow → 200', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { intentions: [] }); // default deny
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);

    const denied = await get(port, '/', { agent });
    expect(denied.status).toBe(403);
    // No intention matched the pair: the default decided, and the reason says so.
    expect(denied.headers['x-meshctl-reason']).toBe('default-deny web -> api');
    expect(stats(a.proxy).inbound.refusals['default-deny web -> api']).toBe(1);
    expect(a.app!.seen).toHaveLength(0);

    const next = snapshot({
      version: 2,
      pki: certs().pki,
      leaf: certs().apiLeaf,
      service: 'api',
      id: 'api-1',
      inboundAddress: '127.0.0.2',
      inboundPort: a.endpoint.port,
      appPort: a.app!.port,
      intentions: ALLOW_WEB,
    });
    expect(await a.proxy.apply(next)).toBe(2);
    const allowed = await get(port, '/', { agent });
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body).app).toBe('api-1');
  });

  it('a pushed deny intention closes connections that are already open', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);
    expect((await get(port, '/', { agent })).status).toBe(200);

    const denyAll = snapshot({
      version: 2,
      pki: certs().pki,
      leaf: certs().apiLeaf,
      service: 'api',
      id: 'api-1',
      inboundAddress: '127.0.0.2',
      inboundPort: a.endpoint.port,
      appPort: a.app!.port,
      intentions: [{ source: 'web', destination: 'api', action: 'deny' }],
    });
    await a.proxy.apply(denyAll);
    expect(stats(a.proxy).inbound.revoked['intention-deny web -> api']).toBe(1);
    await waitFor(
      () => stats(web).upstreams.api!.endpoints['api-1']!.connections.active === 0,
      'pooled connection closed',
    );
    const r = await get(port, '/', { agent });
    expect(r.status).toBe(403);
    expect(r.headers['x-meshctl-reason']).toBe('intention-deny web -> api');
  });

  it('an instance whose app is down answers 502 app-unavailable from its inbound side', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { appPort: await deadPort() });
    // Retries off: one attempt (a 502 is retried by default).
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint], resilience: { retry: { numRetries: 0 } } });
    const r = await get(outboundPort(web, 'api'));
    expect(r.status).toBe(502);
    expect(r.headers['x-meshctl-reason']).toBe('app-unavailable api');
    expect((a.proxy.stats() as any).inbound.errors['app-unavailable api']).toBe(1);
  });

  it('answers a request that is not HTTP with 400', async () => {
    const web = await webProxy({ service: 'api', endpoints: [] });
    const got = await tcpExchange(outboundPort(web, 'api'), 'NOT HTTP AT ALL\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 400 Bad Request/);
  });

  it('no endpoints → 503 no-healthy-endpoints', async () => {
    const web = await webProxy({ service: 'api', endpoints: [] });
    const r = await get(outboundPort(web, 'api'));
    expect(r.status).toBe(503);
    expect(r.headers['x-meshctl-reason']).toBe('no-healthy-endpoints api');
    expect(stats(web).upstreams.api!.errors['no-healthy-endpoints api']).toBe(1);
  });

  it('one endpoint down → every request still succeeds on the other (connect failover)', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const dead = await deadPort();
    const web = await webProxy({ service: 'api', endpoints: [{ id: 'api-dead', port: dead }, a.endpoint] });
    const port = outboundPort(web, 'api');
    for (let i = 0; i < 6; i++) {
      // Half of them carry a body: the body must survive the failed first attempt.
      const r =
        i % 2 === 0 ? await get(port, `/f${i}`) : await get(port, `/f${i}`, { method: 'PUT', body: `body-${i}` });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ app: 'api-1', url: `/f${i}`, body: i % 2 === 0 ? '' : `body-${i}` });
    }
    const s = stats(web).upstreams.api!;
    expect(s.endpoints['api-dead']!.connectFailures['connection-refused']).toBeGreaterThanOrEqual(3);
    expect(s.responses['2xx']).toBe(6);
  });

  it('all endpoints down → 502 connect-failure after trying each once', async () => {
    const d1 = await deadPort();
    const d2 = await deadPort();
    const web = await webProxy({
      service: 'api',
      endpoints: [
        { id: 'dead-1', port: d1 },
        { id: 'dead-2', port: d2 },
      ],
    });
    const r = await get(outboundPort(web, 'api'), '/', { method: 'POST', body: 'x' });
    expect(r.status).toBe(502);
    expect(r.headers['x-meshctl-reason']).toBe('connect-failure api');
    const s = stats(web).upstreams.api!;
    expect(s.endpoints['dead-1']!.connectFailures['connection-refused']).toBe(1);
    expect(s.endpoints['dead-2']!.connectFailures['connection-refused']).toBe(1);
  });

  it('L4 with every endpoint down closes the app connection and counts the reason', async () => {
    const web = await webProxy({
      service: 'api',
      protocol: 'tcp',
      endpoints: [{ id: 'dead-1', port: await deadPort() }],
    });
    const got = await tcpExchange(outboundPort(web, 'api'), 'hello');
    expect(got).toBe('');
    expect(stats(web).upstreams.api!.errors['connect-failure api']).toBe(1);
  });

  it('a client that aborts mid-request frees the upstream connection', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: outboundPort(web, 'api'), path: '/slow', agent: false });
      req.on('error', () => resolve());
      req.end();
      setTimeout(() => req.destroy(), 50);
    });
    const ep = () => stats(web).upstreams.api!.endpoints['api-1']!;
    // The connection the request was on is closed (the api side sees its request end). undici
    // then dials one spare connection for its queue, which waits idle in the pool: at most one.
    await waitFor(
      () => ep().inFlight === 0 && ep().connections.total - ep().connections.active >= 1,
      'upstream connection released',
    );
    expect(ep().connections.active).toBeLessThanOrEqual(1);
  });

  it('weighted balancing follows instance weights', async () => {
    const a = await apiInstance('api-1', '127.0.0.2');
    const b = await apiInstance('api-2', '127.0.0.3');
    const web = await webProxy({
      service: 'api',
      loadBalancer: 'weighted',
      endpoints: [
        { ...a.endpoint, weight: 3 },
        { ...b.endpoint, weight: 1 },
      ],
    });
    const agent = keepAliveAgent(1);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const app = (JSON.parse((await get(outboundPort(web, 'api'), '/', { agent })).body) as { app: string }).app;
      counts[app] = (counts[app] ?? 0) + 1;
    }
    expect(counts).toEqual({ 'api-1': 15, 'api-2': 5 });
  });
});
