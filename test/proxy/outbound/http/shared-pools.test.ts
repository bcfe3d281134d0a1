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

interface TargetStats {
  requests: number;
  endpoints: Record<string, { requests: number; connections: { total: number } }>;
}
function targets(web: MeshProxy): Record<string, TargetStats> {
  return (web.stats() as { upstreams: { api: { policy: { targets: Record<string, TargetStats> } } } }).upstreams.api
    .policy.targets;
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
    // ...through one connection: the app (behind a piping inbound) saw one, and the web sidecar
    // counts one, once, on the endpoint of the target that opened it.
    expect(api.app!.connections).toBe(1);
    const opened = Object.values(t).flatMap((x) => Object.values(x.endpoints).map((e) => e.connections.total));
    expect(opened.reduce((a, b) => a + b, 0)).toBe(1);
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
    const c = pools.acquire('api', endpoint('a'), tls, settings);
    pools.acquire('api', endpoint('a'), tls, settings);
    pools.release(c);
    expect(pools.size).toBe(1);
    // Rotated material: newcomers get a new pool, the old one stays with its last holder.
    const rotated = { ...tls, secureContext: createSecureContext() };
    const d = pools.acquire('api', endpoint('a'), rotated, settings);
    expect(pools.size).toBe(2);
    pools.release(c);
    expect(pools.size).toBe(1);
    expect(pools.acquire('api', endpoint('a'), rotated, settings)).toBe(d);
    pools.release(d);
    pools.release(d);
    expect(pools.size).toBe(0);
  });
});
