/**
 * max_connections is the upstream's, across its instances (Envoy's cluster-wide circuit
 * breaker), not each pool's: every instance's pool gets an equal share, at least one.
 */
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { Cluster } from '../../../src/proxy/outbound/cluster.js';
import { UpstreamPolicy } from '../../../src/proxy/outbound/http/policy.js';
import { RevokedServers } from '../../../src/proxy/outbound/revoked-servers.js';
import type { SnapshotUpstream } from '../../../src/proxy/snapshot.js';

const tls = { secureContext: createSecureContext(), trustDomain: 'test.mesh', revoked: new RevokedServers() };
const settings = { connectTimeoutMs: 1000, idleTimeoutMs: 1000 };
const ep = (n: number) => ({ id: `api-${n}.n${n}`, node: `n${n}`, address: '127.0.0.1', port: 1000 + n, weight: 1 });

function api(instances: number, maxConnections?: number): SnapshotUpstream {
  return {
    service: 'api',
    protocol: 'http',
    localAddress: '127.0.0.1',
    localPort: 0,
    loadBalancer: 'round_robin',
    endpoints: Array.from({ length: instances }, (_, i) => ep(i + 1)),
    ...(maxConnections === undefined ? {} : { resilience: { limits: { maxConnections } } }),
  };
}

describe('max_connections per upstream', () => {
  it('shares the limit between the instances, at least one each, at most the pool bound', () => {
    expect(new Cluster(api(4, 8), tls, settings).connectionsPerEndpoint).toBe(2);
    expect(new Cluster(api(3, 8), tls, settings).connectionsPerEndpoint).toBe(2);
    // More instances than connections: one each (the total is then the instance count).
    expect(new Cluster(api(10, 8), tls, settings).connectionsPerEndpoint).toBe(1);
    // The default 1,024 over one instance: the pool's own bound of 256.
    expect(new Cluster(api(1), tls, settings).connectionsPerEndpoint).toBe(256);
    expect(new Cluster(api(8), tls, settings).connectionsPerEndpoint).toBe(128);
  });

  it('a push that changes the share gives the pools new ones; one that keeps it keeps them', () => {
    const c = new Cluster(api(4, 8), tls, settings);
    const first = c.clientFor(c.endpoints[0]!);
    c.update(api(4, 8), tls, false);
    expect(c.clientFor(c.endpoints[0]!)).toBe(first);
    // Two instances left: 4 connections each now, in a new pool.
    c.update(api(2, 8), tls, false);
    expect(c.connectionsPerEndpoint).toBe(4);
    expect(c.clientFor(c.endpoints[0]!)).not.toBe(first);
    c.destroy();
  });

  it('under a traffic policy the share is of every instance the targets reach, each counted once', () => {
    const u = api(3, 6);
    u.policy = {
      routes: [
        {
          name: 'splitter',
          splits: [
            { weight: 90, target: 'api/v1' },
            { weight: 10, target: 'api/v2' },
          ],
        },
      ],
      targets: [
        // v1 on instances 1 and 2, v2 on 2 and 3: three instances in all.
        {
          name: 'api/v1',
          service: 'api',
          subset: 'v1',
          loadBalancer: { policy: 'round_robin' },
          endpoints: [ep(1), ep(2)],
        },
        {
          name: 'api/v2',
          service: 'api',
          subset: 'v2',
          loadBalancer: { policy: 'round_robin' },
          endpoints: [ep(2), ep(3)],
        },
      ],
    };
    const p = new UpstreamPolicy(u, tls, settings);
    expect([...p.targets()].map((t) => t.cluster.connectionsPerEndpoint)).toEqual([2, 2]);
    p.destroy();
  });
});
