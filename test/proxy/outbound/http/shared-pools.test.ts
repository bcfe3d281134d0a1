/**
 * One keep-alive pool per (target service, host, port) under a traffic policy
 * (src/proxy/outbound/http/shared-pools.ts): subsets, routes and splits that reach the same
 * instance share its mesh connections instead of opening (and warming up) a set each.
 */
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { Endpoint } from '../../../../src/proxy/outbound/endpoint.js';
import { RevokedServers } from '../../../../src/proxy/outbound/revoked-servers.js';
import { SharedPools } from '../../../../src/proxy/outbound/http/shared-pools.js';
import type { SnapshotPolicy } from '../../../../src/proxy/snapshot.js';
import type { MeshProxy } from '../../../../src/proxy/proxy.js';
import { get, keepAliveAgent, outboundPort } from '../../harness.js';
import { webApiFixture } from '../../web-api.js';

const { apiInstance, webSnapshot, webProxy } = webApiFixture();

type Endpoints = Array<{ id: string; address: string; port: number }>;

/** A header route to v2 and a 50/50 split between v1 and v2, both subsets holding the same instances. */
function overlapping(v1: Endpoints, v2: Endpoints = v1): SnapshotPolicy {
  const eps = (list: Endpoints) => list.map((e) => ({ ...e, node: 'n1', weight: 1 }));
  return {
    routes: [
      {
        name: 'route 1 of service-router api',
        match: { headers: [{ name: 'x-canary', exact: '1' }] },
        splits: [{ weight: 100, target: 'api/v2' }],
      },
      {
        name: 'service-splitter api',
        splits: [
          { weight: 50, target: 'api/v1' },
          { weight: 50, target: 'api/v2' },
        ],
      },
    ],
    targets: [
      { name: 'api/v1', service: 'api', subset: 'v1', loadBalancer: { policy: 'round_robin' }, endpoints: eps(v1) },
      { name: 'api/v2', service: 'api', subset: 'v2', loadBalancer: { policy: 'round_robin' }, endpoints: eps(v2) },
    ],
  };
}

interface Connections {
  active: number;
  total: number;
}
interface TargetStats {
  requests: number;
  endpoints: Record<string, { requests: number; connections: Connections }>;
}
interface PoolStats {
  service: string;
  targets: string[];
  current: boolean;
  connections: Connections;
}
function policyStats(web: MeshProxy): { targets: Record<string, TargetStats>; pools: PoolStats[] } {
  return (
    web.stats() as { upstreams: { api: { policy: { targets: Record<string, TargetStats>; pools: PoolStats[] } } } }
  ).upstreams.api.policy;
}
const targets = (web: MeshProxy) => policyStats(web).targets;
/** Each target's connections to its one endpoint (`GET /stats`), by target name. */
function connectionsByTarget(web: MeshProxy): Record<string, Connections> {
  return Object.fromEntries(
    Object.entries(targets(web)).map(([name, t]) => [name, Object.values(t.endpoints)[0]!.connections]),
  );
}

async function sequential(web: MeshProxy, n: number): Promise<void> {
  // One app connection, one request at a time: a pool needs one connection for all of them.
  const agent = keepAliveAgent(1);
  for (let i = 0; i < n; i++) {
    const r = await get(outboundPort(web, 'api'), `/${i}`, { agent, headers: i % 3 === 0 ? { 'x-canary': '1' } : {} });
    expect(r.status).toBe(200);
  }
}

describe('shared pools under a traffic policy', () => {
  it('a split and a route between two subsets of one instance open one mesh connection, not one per subset', async () => {
    const api = await apiInstance('api-1', '127.0.0.1');
    const web = await webProxy({ service: 'api', endpoints: [api.endpoint], policy: overlapping([api.endpoint]) });
    await sequential(web, 30);
    const t = targets(web);
    // Both subsets served requests over the instance...
    expect(t['api/v1']!.requests).toBeGreaterThan(0);
    expect(t['api/v2']!.requests).toBeGreaterThan(0);
    expect(t['api/v1']!.requests + t['api/v2']!.requests).toBe(30);
    // ...through one connection: the app (behind a piping inbound) saw one. The web sidecar
    // shows it under each target whose requests ride it, and once in the pool's own row.
    expect(api.app!.connections).toBe(1);
    expect(connectionsByTarget(web)).toEqual({ 'api/v1': { active: 1, total: 1 }, 'api/v2': { active: 1, total: 1 } });
    expect(policyStats(web).pools).toMatchObject([
      { service: 'api', targets: ['api/v1', 'api/v2'], current: true, connections: { active: 1, total: 1 } },
    ]);
    // The agent's report (and its Prometheus series) take the same rows, one per subset.
    const rows = web.metrics()!.upstreams[0]!.endpoints.map((e) => [e.subset, e.activeConnections, e.totalConnections]);
    expect(rows).toEqual([
      ['api/v1', 1, 1],
      ['api/v2', 1, 1],
    ]);
  });

  it('a push that drops the target which opened the pool keeps it for the targets still holding it', async () => {
    const api = await apiInstance('api-1', '127.0.0.1');
    const upstream = { service: 'api', endpoints: [api.endpoint], policy: overlapping([api.endpoint]) };
    const web = await webProxy(upstream);
    await sequential(web, 10);
    expect(api.app!.connections).toBe(1);
    // Only v2 is left: every request goes there, over the connection already open.
    const only = overlapping([api.endpoint]);
    const v2only: SnapshotPolicy = {
      routes: [{ name: 'service-splitter api', splits: [{ weight: 100, target: 'api/v2' }] }],
      targets: only.targets.filter((x) => x.name === 'api/v2'),
    };
    await web.apply(webSnapshot({ ...upstream, policy: v2only }, 2));
    await sequential(web, 10);
    expect(Object.keys(targets(web))).toEqual(['api/v2']);
    expect(api.app!.connections).toBe(1);
  });

  it('the target that opened a shared pool leaves: the one still riding it shows its connection', async () => {
    const api = await apiInstance('api-1', '127.0.0.1');
    // No random split here: x-canary goes to api/v2, everything else to api/v1, so which target
    // opens the pool and how many requests each serves are fixed.
    const both = overlapping([api.endpoint]);
    const canaryOrV1: SnapshotPolicy = {
      routes: [both.routes[0]!, { name: 'service-splitter api', splits: [{ weight: 100, target: 'api/v1' }] }],
      targets: both.targets,
    };
    const upstream = { service: 'api', endpoints: [api.endpoint], policy: canaryOrV1 };
    const web = await webProxy(upstream);
    // The first request takes the x-canary route: api/v2 opens the pool, api/v1 joins it.
    await sequential(web, 10);
    expect(targets(web)['api/v1']!.requests).toBe(6);
    expect(connectionsByTarget(web)).toEqual({ 'api/v1': { active: 1, total: 1 }, 'api/v2': { active: 1, total: 1 } });
    // Only v1 is left: the pool stays (v1 holds it), and v1's row still shows the open connection.
    const v1only: SnapshotPolicy = {
      routes: [{ name: 'service-splitter api', splits: [{ weight: 100, target: 'api/v1' }] }],
      targets: both.targets.filter((x) => x.name === 'api/v1'),
    };
    await web.apply(webSnapshot({ ...upstream, policy: v1only }, 2));
    await sequential(web, 10);
    expect(targets(web)['api/v1']!.requests).toBe(16);
    expect(api.app!.connections).toBe(1);
    expect(connectionsByTarget(web)).toEqual({ 'api/v1': { active: 1, total: 1 } });
    expect(policyStats(web).pools).toMatchObject([{ targets: ['api/v1'], connections: { active: 1, total: 1 } }]);
  });

  it('subsets of different instances keep a pool each', async () => {
    const a = await apiInstance('api-1', '127.0.0.1');
    const b = await apiInstance('api-2', '127.0.0.1');
    const web = await webProxy({
      service: 'api',
      endpoints: [a.endpoint, b.endpoint],
      policy: overlapping([a.endpoint], [b.endpoint]),
    });
    await sequential(web, 20);
    expect(a.app!.connections).toBe(1);
    expect(b.app!.connections).toBe(1);
  });
});

describe('SharedPools', () => {
  const revoked = new RevokedServers();
  const tls = { secureContext: createSecureContext(), checkServerIdentity: () => undefined, revoked };
  const settings = { connectTimeoutMs: 1000, idleTimeoutMs: 1000, connections: 8 };
  const endpoint = (id: string, port = 1) => new Endpoint({ id, node: 'n1', address: '127.0.0.1', port, weight: 1 });

  it('shares by service, host and port; not across services, addresses, TLS material or settings', () => {
    const pools = new SharedPools();
    const c = pools.acquire('api', endpoint('a'), tls, settings);
    // Another target's Endpoint object for the same instance.
    expect(pools.acquire('api', endpoint('a'), tls, settings)).toBe(c);
    expect(pools.acquire('canary', endpoint('a'), tls, settings)).not.toBe(c);
    expect(pools.acquire('api', endpoint('a', 2), tls, settings)).not.toBe(c);
    const rotated = { ...tls, secureContext: createSecureContext() };
    expect(pools.acquire('api', endpoint('a'), rotated, settings)).not.toBe(c);
    expect(pools.acquire('api', endpoint('a'), tls, { ...settings, idleTimeoutMs: 5 })).not.toBe(c);
    pools.destroy();
    expect(pools.size).toBe(0);
  });

  it('a pool lives while a holder does; a newer pool for the same key does not end the older one early', () => {
    const pools = new SharedPools();
    const [v1, v2, v1b, v2b] = [endpoint('a'), endpoint('a'), endpoint('a'), endpoint('a')];
    const c = pools.acquire('api', v1, tls, settings);
    pools.acquire('api', v2, tls, settings);
    pools.release(c, v1);
    // A holder letting go twice does not end the pool for the other.
    pools.release(c, v1);
    expect(pools.size).toBe(1);
    // Rotated material: newcomers get a new pool, the old one stays with its last holder.
    const rotated = { ...tls, secureContext: createSecureContext() };
    const d = pools.acquire('api', v1b, rotated, settings);
    expect(pools.size).toBe(2);
    const names = new Map([
      [v2, 'api/v2'],
      [v1b, 'api/v1'],
    ]);
    expect(pools.pools((h) => names.get(h)).map((p) => [p.targets, p.current])).toEqual([
      [['api/v2'], false],
      [['api/v1'], true],
    ]);
    pools.release(c, v2);
    expect(pools.size).toBe(1);
    expect(pools.acquire('api', v2b, rotated, settings)).toBe(d);
    pools.release(d, v1b);
    pools.release(d, v2b);
    expect(pools.size).toBe(0);
  });
});
