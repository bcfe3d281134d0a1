import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../../../src/proxy/outbound/http/budget.js';

const DEFAULTS = { percent: 20, minRetriesPerSecond: 10, ttlMs: 10_000 };

/** Requests at `rps` for `seconds`, each failing and asking for one retry: how many were allowed. */
function failingLoad(b: RetryBudget, rps: number, seconds: number, start = 0): number {
  let allowed = 0;
  const n = rps * seconds;
  for (let i = 0; i < n; i++) {
    const now = start + (i * 1000) / rps;
    b.request(now);
    if (b.withdraw(now)) allowed += 1;
  }
  return allowed;
}

describe('retry budget', () => {
  it('a failing upstream at 200 req/s gets at most 20 % + 10/s more load (1.25x), not 2x', () => {
    const b = new RetryBudget(DEFAULTS, 0);
    const requests = 200 * 30;
    const retries = failingLoad(b, 200, 30);
    expect((requests + retries) / requests).toBeLessThanOrEqual(1.25);
    // ...and it is spent, not simply unused: close to the bound.
    expect((requests + retries) / requests).toBeGreaterThan(1.2);
    expect(b.exhausted).toBe(requests - retries);
  });

  it('at 1,000 req/s the share tends to the 20 %', () => {
    const b = new RetryBudget(DEFAULTS, 0);
    const retries = failingLoad(b, 1000, 20);
    expect(retries / 20_000).toBeLessThanOrEqual(0.21);
    expect(retries / 20_000).toBeGreaterThan(0.19);
  });

  it('a burst right after start cannot spend a whole window of the per-second reserve', () => {
    const b = new RetryBudget(DEFAULTS, 0);
    let allowed = 0;
    for (let i = 0; i < 1000; i++) {
      b.request(100);
      if (b.withdraw(100)) allowed += 1;
    }
    // 20 % of 1,000 plus 10/s for one second (the least a budget counts), not for the window.
    expect(allowed).toBe(210);
  });

  it('a quiet upstream can still retry: 10 per second with few requests', () => {
    const b = new RetryBudget(DEFAULTS, 0);
    // 1 request per second for 10 s, each wanting a retry: all of them fit in the 10/s.
    expect(failingLoad(b, 1, 10, 10_000)).toBe(10);
  });

  it('old requests and retries leave the window', () => {
    const b = new RetryBudget({ percent: 50, minRetriesPerSecond: 0, ttlMs: 10_000 }, 0);
    for (let i = 0; i < 100; i++) b.request(1000);
    let early = 0;
    while (b.withdraw(1000)) early += 1;
    expect(early).toBe(50);
    // 30 s later the window holds nothing: no requests, so no retries either.
    expect(b.withdraw(31_000)).toBe(false);
    for (let i = 0; i < 10; i++) b.request(31_000);
    expect(b.withdraw(31_000)).toBe(true);
  });
});
