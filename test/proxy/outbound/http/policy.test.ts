import { createSecureContext } from 'node:tls';
import { RevokedServers } from '../../../../src/proxy/outbound/revoked-servers.js';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/proxy/outbound/balancers.js';
import type { Endpoint } from '../../../../src/proxy/outbound/endpoint.js';
import { AttemptSignal, type OutboundRequest } from '../../../../src/proxy/outbound/http/client.js';
import { runPipeline, type PipelineDeps } from '../../../../src/proxy/outbound/http/pipeline.js';
import { UpstreamPolicy } from '../../../../src/proxy/outbound/http/policy.js';
import { route } from '../../../../src/proxy/outbound/http/route.js';
import type { SnapshotPolicy, SnapshotUpstream } from '../../../../src/proxy/snapshot.js';
import { response } from './fixtures.js';

const tls = { secureContext: createSecureContext(), trustDomain: 'test.mesh', revoked: new RevokedServers() };
const settings = { connectTimeoutMs: 1000, idleTimeoutMs: 1000, random: () => 0 };

const ep = (id: string, port: number) => ({ id, node: 'n1', address: '127.0.0.1', port, weight: 1 });

/** What the agent compiles from the example: resolver v1/v2, splitter 90/10, router with a header and a prefix route. */
function api(policy: Partial<SnapshotPolicy> = {}, v2 = [ep('api-v2.n2', 2001)]): SnapshotUpstream {
  return {
    service: 'api',
    protocol: 'http',
    localAddress: '127.0.0.1',
    localPort: 0,
    loadBalancer: 'round_robin',
    endpoints: [ep('api-v1.n1', 1001), ...v2],
    policy: {
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
          requestHeaders: { set: { 'x-route': 'two' }, remove: ['x-drop'] },
          responseHeaders: { add: { 'x-served-by': 'v2' } },
          splits: [{ weight: 100, target: 'api/v2' }],
        },
        {
          name: 'service-splitter api',
          splits: [
            { weight: 90, target: 'api/v1' },
            { weight: 10, target: 'api/v2', requestHeaders: { add: { 'x-canary-split': 'yes' } } },
          ],
        },
      ],
      targets: [
        {
          name: 'api/v1',
          service: 'api',
          subset: 'v1',
          loadBalancer: { policy: 'round_robin' },
          endpoints: [ep('api-v1.n1', 1001)],
        },
        { name: 'api/v2', service: 'api', subset: 'v2', loadBalancer: { policy: 'round_robin' }, endpoints: v2 },
      ],
      ...policy,
    },
  };
}

function harness(random = seededRandom(7)) {
  const sent: Array<{ endpoint: string; request: OutboundRequest }> = [];
  const deps: PipelineDeps = {
    send: (e: Endpoint, request: OutboundRequest) => {
      sent.push({ endpoint: e.id, request: { ...request, headers: { ...request.headers } } });
      return Promise.resolve(response(200));
    },
    random,
    now: () => 0,
    started: () => {},
    abandoned: () => {},
    timer: () => () => {},
  };
  return { deps, sent };
}

const req = (path: string, headers: Record<string, string> = {}) => ({ method: 'GET', path, headers: { ...headers } });

describe('traffic policy in the outbound pipeline', () => {
  it('builds the route table in snapshot order, with the route names as labels', () => {
    const p = new UpstreamPolicy(api(), tls, settings);
    expect(p.table.routes.map((r) => r.name)).toEqual([
      'route 1 of service-router api',
      'route 2 of service-router api',
      'service-splitter api',
    ]);
    expect(route(p.table, req('/x', { 'x-canary': '1' }))?.name).toBe('route 1 of service-router api');
    expect(route(p.table, req('/v2/users'))?.name).toBe('route 2 of service-router api');
    expect(route(p.table, req('/v3/users', { 'x-canary': '0' }))?.name).toBe('service-splitter api');
    // One cluster per target, each with only its subset's instances.
    const targets = [...p.targets()];
    expect(targets.map((t) => [t.name, t.cluster.endpoints.map((e) => e.id)])).toEqual([
      ['api/v1', ['api-v1.n1']],
      ['api/v2', ['api-v2.n2']],
    ]);
  });

  it('a header route reaches only its subset', async () => {
    const p = new UpstreamPolicy(api(), tls, settings);
    const h = harness();
    for (let i = 0; i < 50; i++) {
      const r = await runPipeline(
        {
          request: req('/x', { 'x-canary': '1' }),
          body: undefined,
          routes: p.table,
          signal: new AttemptSignal(),
        },
        h.deps,
      );
      expect(r.kind === 'relay' && r.target.name).toBe('api/v2');
    }
    expect(new Set(h.sent.map((s) => s.endpoint))).toEqual(new Set(['api-v2.n2']));
  });

  it('a prefix route rewrites the path (query kept) and changes the request headers', async () => {
    const p = new UpstreamPolicy(api(), tls, settings);
    const h = harness();
    const r = await runPipeline(
      {
        request: req('/v2/users/7?full=1', { 'x-drop': 'secret', 'x-keep': 'k' }),
        body: undefined,
        routes: p.table,
        signal: new AttemptSignal(),
      },
      h.deps,
    );
    expect(r.kind).toBe('relay');
    expect(h.sent[0]!.endpoint).toBe('api-v2.n2');
    expect(h.sent[0]!.request.path).toBe('/users/7?full=1');
    expect(h.sent[0]!.request.headers).toEqual({ 'x-keep': 'k', 'x-route': 'two' });
    // The response header change is the forwarder's, from the route the result names.
    const out: Record<string, string | string[]> = { 'x-served-by': 'app' };
    if (r.kind === 'relay') r.route.responseHeaders?.(out);
    expect(out['x-served-by']).toEqual(['app', 'v2']);
  });

  it('a request no policy route changes goes as it came (same object, no copy)', async () => {
    const p = new UpstreamPolicy(api(), tls, settings);
    const h = harness(() => 0);
    const request = req('/plain');
    const sent: OutboundRequest[] = [];
    h.deps.send = (_e, r) => {
      sent.push(r);
      return Promise.resolve(response(200));
    };
    await runPipeline({ request, body: undefined, routes: p.table, signal: new AttemptSignal() }, h.deps);
    expect(sent[0]).toBe(request);
  });

  it('90/10 over 2,000 seeded requests: v2 within 5 sigma of 10 %, and only the v2 split adds its header', async () => {
    const p = new UpstreamPolicy(api(), tls, settings);
    const h = harness(seededRandom(3));
    for (let i = 0; i < 2000; i++)
      await runPipeline(
        {
          request: req('/'),
          body: undefined,
          routes: p.table,
          signal: new AttemptSignal(),
        },
        h.deps,
      );
    const v2 = h.sent.filter((s) => s.endpoint === 'api-v2.n2');
    // sigma = sqrt(2000 * 0.1 * 0.9) ≈ 13.4
    expect(Math.abs(v2.length - 200)).toBeLessThan(5 * 13.42);
    expect(v2.every((s) => s.request.headers['x-canary-split'] === 'yes')).toBe(true);
    expect(h.sent.filter((s) => s.endpoint !== 'api-v2.n2').some((s) => 'x-canary-split' in s.request.headers)).toBe(
      false,
    );
  });

  it('a subset with no healthy instance: 503 reason names the subset and the route', async () => {
    const p = new UpstreamPolicy(api({}, []), tls, settings);
    const h = harness();
    const r = await runPipeline(
      {
        request: req('/v2/x'),
        body: undefined,
        routes: p.table,
        signal: new AttemptSignal(),
      },
      h.deps,
    );
    expect(r).toMatchObject({
      kind: 'answer',
      reason: 'no-healthy-endpoints',
      service: 'api/v2',
      detail: 'api/v2 (route 2 of service-router api)',
    });
    expect(h.sent).toEqual([]);
  });

  it('a sticky route picks the split by the request hash: one cookie, one side', async () => {
    const u = api();
    u.policy!.routes[2] = { ...u.policy!.routes[2]!, stickyHash: [{ field: 'cookie', fieldValue: 'session' }] };
    u.policy!.routes[2]!.splits = [
      { weight: 50, target: 'api/v1' },
      { weight: 50, target: 'api/v2' },
    ];
    const p = new UpstreamPolicy(u, tls, settings);
    const h = harness(seededRandom(5));
    const sides = new Map<string, Set<string>>();
    for (let user = 0; user < 20; user++)
      for (let i = 0; i < 10; i++) {
        const r = await runPipeline(
          {
            request: req('/', { cookie: `theme=dark; session=user-${user}` }),
            body: undefined,
            routes: p.table,
            signal: new AttemptSignal(),
          },
          h.deps,
        );
        const s = sides.get(`user-${user}`) ?? new Set();
        s.add(r.kind === 'relay' ? r.target.name! : '?');
        sides.set(`user-${user}`, s);
      }
    expect([...sides.values()].every((s) => s.size === 1)).toBe(true);
    // Both sides get users (20 users at 50/50: all on one side is 2 in a million).
    expect(new Set([...sides.values()].map((s) => [...s][0])).size).toBe(2);
  });

  it('a newer snapshot keeps the targets that stay (clusters, balancers) and drops the rest', () => {
    const p = new UpstreamPolicy(api(), tls, settings);
    const [v1, v2] = [...p.targets()];
    const u = api();
    u.policy!.targets[1] = { ...u.policy!.targets[1]!, endpoints: [ep('api-v2.n2', 2001), ep('api-v2b.n3', 2002)] };
    p.update(u, tls, false);
    const [v1b, v2b] = [...p.targets()];
    expect(v1b).toBe(v1);
    expect(v2b!.cluster).toBe(v2!.cluster);
    expect(v2b!.balancer).toBe(v2!.balancer);
    expect(v2b!.cluster.endpoints.map((e) => e.id)).toEqual(['api-v2.n2', 'api-v2b.n3']);
    // A balancer change makes a new balancer; a target that goes is gone.
    const w = api();
    w.policy = {
      routes: [{ name: 'service-resolver api', splits: [{ weight: 100, target: 'api/v1' }] }],
      targets: [{ ...w.policy!.targets[0]!, loadBalancer: { policy: 'least_request', choiceCount: 3 } }],
    };
    p.update(w, tls, false);
    expect([...p.targets()].map((t) => [t.name, t.balancer.name])).toEqual([['api/v1', 'least_request']]);
    expect(p.table.routes[0]!.splits[0]!.balancer).toBe([...p.targets()][0]!.balancer);
  });

  it("a route's own timeouts and retries are merged over the upstream's once per push, not per request", async () => {
    const withRoute = (requestTimeoutMs: number) => {
      const u = api();
      u.resilience = { requestTimeoutMs, retry: { numRetries: 3 } };
      u.policy!.routes[1] = { ...u.policy!.routes[1]!, resilience: { perTryTimeoutMs: 500, retry: { numRetries: 0 } } };
      return u;
    };
    const p = new UpstreamPolicy(withRoute(9000), tls, settings);
    const merged = p.table.routes[1]!.splits[0]!.settings!;
    // The route's per-try timeout and retries over the upstream's request timeout.
    expect(merged).toMatchObject({ requestTimeoutMs: 9000, perTryTimeoutMs: 500, retry: { numRetries: 0 } });
    // Routes without settings of their own have none merged: the cluster's are used as they are.
    expect(p.table.routes[2]!.splits[0]!.settings).toBeUndefined();
    // The pipeline takes the merged object itself (the timer it arms has the upstream's 9 s).
    const armed: number[] = [];
    const h = harness();
    await runPipeline(
      { request: req('/v2/x'), body: undefined, routes: p.table, signal: new AttemptSignal() },
      { ...h.deps, timer: (ms) => (armed.push(ms), () => {}) },
    );
    expect(armed).toEqual([9000, 500]);
    // A push that changes the upstream's settings merges again.
    p.update(withRoute(4000), tls, false);
    expect(p.table.routes[1]!.splits[0]!.settings).toMatchObject({ requestTimeoutMs: 4000, perTryTimeoutMs: 500 });
  });
});
