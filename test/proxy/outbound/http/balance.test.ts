import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../../src/proxy/outbound/balancers.js';
import type { Endpoint } from '../../../../src/proxy/outbound/endpoint.js';
import { balance } from '../../../../src/proxy/outbound/http/balance.js';
import { cluster } from './fixtures.js';

describe('balance stage', () => {
  it("uses the cluster's own balancer by default: weights count", () => {
    const c = cluster('api', [
      { id: 'a', weight: 3 },
      { id: 'b', weight: 1 },
    ]);
    const picks = Array.from(
      { length: 8 },
      () => balance({ cluster: c, balancer: c.balancer, tried: undefined, now: 0 })!.id,
    );
    expect(picks.join('')).toBe('aabaaaba');
  });

  it('takes the balancer as input: another one works on the same endpoints with its own state', () => {
    const c = cluster('api', [{ id: 'a' }, { id: 'b' }, { id: 'c' }], 'round_robin', () => 0);
    const random = createBalancer<Endpoint>('random', () => 0);
    expect(balance({ cluster: c, balancer: random, tried: undefined, now: 0 })?.id).toBe('a'); // random() = 0 → the first
    expect(c.balancerFor('random')).toBe(c.balancerFor('random'));
    expect(c.balancerFor('round_robin')).toBe(c.balancer);
  });

  it('never hands out an endpoint this request has tried', () => {
    const c = cluster('api', [{ id: 'a' }, { id: 'b' }]);
    const [a, b] = c.endpoints;
    expect(balance({ cluster: c, balancer: createBalancer<Endpoint>('least_request'), tried: [a!], now: 0 })).toBe(b);
    expect(balance({ cluster: c, balancer: c.balancer, tried: [a!, b!], now: 0 })).toBeUndefined();
  });

  it('passes the request hash to a consistent-hash balancer: one hash, one endpoint', () => {
    const c = cluster('api', [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }]);
    const ring = createBalancer<Endpoint>('ring_hash');
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++)
      seen.add(balance({ cluster: c, balancer: ring, tried: undefined, hash: 12345, now: 0 })!.id);
    expect(seen.size).toBe(1);
  });
});
