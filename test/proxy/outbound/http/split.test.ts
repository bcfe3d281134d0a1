import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../../src/proxy/outbound/balancers.js';
import { split } from '../../../../src/proxy/outbound/http/split.js';

describe('split stage', () => {
  it('one target costs no random number', () => {
    const only = { weight: 1, name: 'v1' };
    expect(
      split([only], () => {
        throw new Error('no random number wanted');
      }),
    ).toBe(only);
    expect(split([], Math.random)).toBeUndefined();
  });

  it('maps the random number onto the weights', () => {
    const t = [
      { weight: 90, name: 'v1' },
      { weight: 10, name: 'v2' },
    ];
    expect(split(t, () => 0)?.name).toBe('v1');
    expect(split(t, () => 0.8999)?.name).toBe('v1');
    expect(split(t, () => 0.9)?.name).toBe('v2');
    expect(split(t, () => 0.999999999)?.name).toBe('v2');
  });

  it('90/10 over 10,000 seeded picks lands within 5 sigma of 10 %', () => {
    const t = [
      { weight: 90, name: 'v1' },
      { weight: 10, name: 'v2' },
    ];
    const random = seededRandom(11);
    let v2 = 0;
    for (let i = 0; i < 10_000; i++) if (split(t, random)!.name === 'v2') v2 += 1;
    // sigma = sqrt(10000 * 0.1 * 0.9) = 30
    expect(Math.abs(v2 - 1000)).toBeLessThan(150);
  });
});
