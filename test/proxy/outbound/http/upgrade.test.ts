/**
 * WebSocket upgrades under a traffic policy (src/proxy/outbound/http/upgrade.ts): an `Upgrade`
 * request takes the upstream's routes like any request — a header route, a prefix route with
 * its rewrite and header change, the split — and tunnels to the chosen subset's instance,
 * through a real sidecar pair (web's outbound, api's inbound, TLS between them).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../../../src/proxy/proxy.js';
import type { SnapshotPolicy } from '../../../../src/proxy/snapshot.js';
import { outboundPort } from '../../harness.js';
import { webApiFixture } from '../../web-api.js';

const { apiInstance, webProxy } = webApiFixture();

interface Upgraded {
  status: number;
  headers: IncomingHttpHeaders;
  /** What came back through the tunnel for `hello` (the app upper-cases), or the mesh's answer body. */
  echoed: string;
}

/** An upgrade through web's outbound; on 101, one exchange through the tunnel. */
function upgrade(web: MeshProxy, path: string, headers: Record<string, string> = {}): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: outboundPort(web, 'api'),
      path,
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
        'sec-websocket-version': '13',
        ...headers,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, echoed: body }));
    });
    req.on('upgrade', (res, socket) => {
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        got += d;
        if (got.length >= 5) {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, echoed: got });
        }
      });
      socket.write('hello');
    });
    req.end();
  });
}

type Ep = { id: string; address: string; port: number };
const eps = (list: Ep[]) => list.map((e) => ({ ...e, node: 'n1', weight: 1 }));

/** The router over v1/v2 (and an empty v3), the rest 100 % to v1. */
function policy(v1: Ep[], v2: Ep[]): SnapshotPolicy {
  return {
    routes: [
      {
        name: 'route 1 of service-router api',
        match: { headers: [{ name: 'x-canary', exact: '1' }] },
        splits: [{ weight: 100, target: 'api/v2' }],
      },
      {
        name: 'route 2 of service-router api',
        match: { pathPrefix: '/v2/' },
        prefixRewrite: '/',
        requestHeaders: { set: { 'x-routed': 'v2-prefix' } },
        splits: [{ weight: 100, target: 'api/v2' }],
      },
      {
        name: 'route 3 of service-router api',
        match: { pathPrefix: '/v3/' },
        splits: [{ weight: 100, target: 'api/v3' }],
      },
      { name: 'service-splitter api', splits: [{ weight: 100, target: 'api/v1' }] },
    ],
    targets: [
      { name: 'api/v1', service: 'api', subset: 'v1', loadBalancer: { policy: 'round_robin' }, endpoints: eps(v1) },
      { name: 'api/v2', service: 'api', subset: 'v2', loadBalancer: { policy: 'round_robin' }, endpoints: eps(v2) },
      { name: 'api/v3', service: 'api', subset: 'v3', loadBalancer: { policy: 'round_robin' }, endpoints: [] },
    ],
  };
}

type Targets = Record<
  string,
  { requests: number; responses: Record<string, number>; meshErrors: Record<string, number> }
>;
function targets(web: MeshProxy): Targets {
  return (web.stats() as { upstreams: { api: { policy: { targets: Targets } } } }).upstreams.api.policy.targets;
}

describe('WebSocket upgrades through the routes', () => {
  async function mesh() {
    const v1 = await apiInstance('api-v1', '127.0.0.1');
    const v2 = await apiInstance('api-v2', '127.0.0.1');
    const web = await webProxy({
      service: 'api',
      endpoints: [v1.endpoint, v2.endpoint],
      policy: policy([v1.endpoint], [v2.endpoint]),
    });
    return { v1: v1.app!, v2: v2.app!, web };
  }

  it('a header route tunnels to its subset only; an upgrade no route takes goes by the split', async () => {
    const { v1, v2, web } = await mesh();
    for (let i = 0; i < 6; i++) {
      const r = await upgrade(web, '/ws', { 'x-canary': '1' });
      expect(r.status).toBe(101);
      expect(r.headers['x-app']).toBe('api-v2');
      expect(r.echoed).toBe('HELLO');
    }
    for (let i = 0; i < 4; i++) expect((await upgrade(web, '/ws')).headers['x-app']).toBe('api-v1');
    expect(v2.upgrades).toHaveLength(6);
    expect(v1.upgrades).toHaveLength(4);
    // Counted on each subset's figures, as requests are.
    const t = targets(web);
    expect([t['api/v2']!.requests, t['api/v2']!.responses]).toEqual([6, { '1xx': 6 }]);
    expect([t['api/v1']!.requests, t['api/v1']!.responses]).toEqual([4, { '1xx': 4 }]);
  });

  it('a prefix route tunnels with the rewritten path and its request header change', async () => {
    const { v1, v2, web } = await mesh();
    const r = await upgrade(web, '/v2/chat?room=7');
    expect(r.status).toBe(101);
    expect(r.echoed).toBe('HELLO');
    expect(v2.upgrades.map((u) => [u.url, u.headers['x-routed']])).toEqual([['/chat?room=7', 'v2-prefix']]);
    expect(v1.upgrades).toEqual([]);
  });

  it('a subset with no instance answers the upgrade 503 naming the subset and the route', async () => {
    const { v1, v2, web } = await mesh();
    const r = await upgrade(web, '/v3/ws');
    expect(r.status).toBe(503);
    expect(r.headers['x-meshctl-reason']).toBe('no-healthy-endpoints api/v3 (route 3 of service-router api)');
    expect(v1.upgrades.length + v2.upgrades.length).toBe(0);
    expect(targets(web)['api/v3']!.meshErrors).toEqual({ 'no-healthy-endpoints': 1 });
  });
});
