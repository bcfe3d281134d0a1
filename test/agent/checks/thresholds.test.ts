import { describe, expect, it } from 'vitest';
import { StatusFilter, type CheckStatus } from '../../../src/agent/checks/index.js';

/** Feeds raw results and returns the reported status after each. */
function feed(filter: StatusFilter, raws: CheckStatus[]): CheckStatus[] {
  return raws.map((r) => filter.observe(r));
}

describe('StatusFilter (Consul thresholds)', () => {
  it('starts critical and reports each result at once with thresholds of one', () => {
    const f = new StatusFilter(1, 1);
    expect(f.status).toBe('critical');
    expect(feed(f, ['passing', 'critical', 'warning', 'passing'])).toEqual([
      'passing',
      'critical',
      'warning',
      'passing',
    ]);
  });

  it('flips to critical only after failuresBeforeCritical failures in a row', () => {
    const f = new StatusFilter(1, 2, 'passing');
    expect(feed(f, ['critical'])).toEqual(['passing']);
    expect(f.consecutiveFailures).toBe(1);
    // A success in between starts the count again.
    expect(feed(f, ['passing', 'critical'])).toEqual(['passing', 'passing']);
    expect(feed(f, ['critical'])).toEqual(['critical']);
    expect(f.consecutiveFailures).toBe(2);
  });

  it('flips to passing only after successBeforePassing successes in a row', () => {
    const f = new StatusFilter(3, 1);
    expect(feed(f, ['passing', 'passing'])).toEqual(['critical', 'critical']);
    expect(f.consecutiveSuccesses).toBe(2);
    expect(feed(f, ['critical', 'passing', 'passing'])).toEqual(['critical', 'critical', 'critical']);
    expect(feed(f, ['passing'])).toEqual(['passing']);
    expect(f.consecutiveSuccesses).toBe(3);
    expect(f.consecutiveFailures).toBe(0);
  });

  it('reports warning at once, whatever the thresholds, and breaks both runs', () => {
    const f = new StatusFilter(3, 3, 'passing');
    expect(feed(f, ['critical', 'critical', 'warning'])).toEqual(['passing', 'passing', 'warning']);
    expect(f.consecutiveFailures).toBe(0);
    expect(f.consecutiveSuccesses).toBe(0);
    // Two more failures are not three in a row: the warning broke the run.
    expect(feed(f, ['critical', 'critical'])).toEqual(['warning', 'warning']);
    expect(feed(f, ['critical'])).toEqual(['critical']);
  });

  it('can start from a kept status', () => {
    const f = new StatusFilter(2, 2, 'warning');
    expect(f.status).toBe('warning');
    expect(feed(f, ['passing', 'passing'])).toEqual(['warning', 'passing']);
  });
});
