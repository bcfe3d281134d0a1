import { describe, expect, it } from 'vitest';
import { balance } from '../../../../src/proxy/outbound/http/balance.js';
import { cluster } from './fixtures.js';

describe('balance stage', () => {
  it("uses the cluster's own balancer for its own policy: weights count by default", () => {
    const c = cluster('api', [
      { id: 'a', weight: 3 },
      { id: 'b', weight: 1 },
    ]);
    const picks = Array.from({ length: 8 }, () => balance({ cluster: c, policy: 'round_robin', tried: undefined })!.id);
    expect(picks.join('')).toBe('aabaaaba');
  });

  it('takes the policy as input: another policy gets a balancer of its own on the same endpoints', () => {
    const c = cluster('api', [{ id: 'a' }, { id: 'b' }, { id: 'c' }], 'round_robin', () => 0);
    const random = balance({ cluster: c, policy: 'random', tried: undefined });
    expect(random?.id).toBe('a'); // random() = 0 → the first
    expect(c.balancerFor('random')).toBe(c.balancerFor('random'));
    expect(c.balancerFor('round_robin')).toBe(c.balancer);
  });

  it('never hands out an endpoint this request has tried', () => {
    const c = cluster('api', [{ id: 'a' }, { id: 'b' }]);
    const [a, b] = c.endpoints;
    expect(balance({ cluster: c, policy: 'least_request', tried: [a!] })).toBe(b);
    expect(balance({ cluster: c, policy: 'round_robin', tried: [a!, b!] })).toBeUndefined();
  });
});
