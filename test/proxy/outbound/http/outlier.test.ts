import { describe, expect, it } from 'vitest';
import { balance } from '../../../../src/proxy/outbound/http/balance.js';
import { OutlierDetector, verdictOf } from '../../../../src/proxy/outbound/http/outlier.js';
import { cluster, connectFailure, reset, response } from './fixtures.js';

const SETTINGS = { intervalMs: 10_000, consecutiveErrors: 5, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 };

function detector(n: number, settings = SETTINGS) {
  const c = cluster(
    'api',
    Array.from({ length: n }, (_, i) => ({ id: `e${i}` })),
  );
  const d = new OutlierDetector(settings);
  d.setEndpoints(c.endpoints, 0);
  return { d, eps: c.endpoints };
}

const ids = (l: readonly { id: string }[]) => l.map((e) => e.id);

describe('outlier ejection', () => {
  it('5 failures in a row eject an endpoint; a success in between starts the count again', () => {
    const { d, eps } = detector(10);
    const e = eps[0]!;
    for (let i = 0; i < 4; i++) expect(d.record(e, 'failure', 1)).toBe(false);
    d.record(e, 'success', 1);
    for (let i = 0; i < 4; i++) expect(d.record(e, 'failure', 1)).toBe(false);
    expect(d.record(e, 'failure', 1)).toBe(true);
    expect(ids(d.available(2))).not.toContain('e0');
    expect(d.available(2)).toHaveLength(9);
    expect(d.total).toBe(1);
  });

  it('comes back after the base time x its ejections, by itself', () => {
    const { d, eps } = detector(10);
    const e = eps[0]!;
    for (let i = 0; i < 5; i++) d.record(e, 'failure', 0);
    expect(d.available(29_999)).toHaveLength(9);
    expect(d.available(30_000)).toHaveLength(10);
    // The second ejection lasts twice as long.
    for (let i = 0; i < 5; i++) d.record(e, 'failure', 30_000);
    expect(e.outlier.ejections).toBe(2);
    expect(d.available(89_999)).toHaveLength(9);
    expect(d.available(90_000)).toHaveLength(10);
  });

  it('at most 10 % out at once, but at least one: of two endpoints the bad one goes', () => {
    const { d, eps } = detector(2);
    for (let i = 0; i < 5; i++) d.record(eps[0]!, 'failure', 0);
    for (let i = 0; i < 5; i++) d.record(eps[1]!, 'failure', 0);
    expect(ids(d.available(1))).toEqual(['e1']);
    const ten = detector(20);
    for (const e of ten.eps.slice(0, 5)) for (let i = 0; i < 5; i++) ten.d.record(e, 'failure', 0);
    expect(ten.d.ejectedCount).toBe(2);
  });

  it('panic: with every endpoint out, all of them are used', () => {
    const { d, eps } = detector(1);
    for (let i = 0; i < 5; i++) d.record(eps[0]!, 'failure', 0);
    expect(d.ejectedCount).toBe(1);
    expect(ids(d.available(1))).toEqual(['e0']);
  });

  it('off with max_failures 0 or max_ejection_percent 0', () => {
    for (const s of [{ consecutiveErrors: 0 }, { maxEjectionPercent: 0 }]) {
      const { d, eps } = detector(10, { ...SETTINGS, ...s });
      for (let i = 0; i < 50; i++) expect(d.record(eps[0]!, 'failure', 0)).toBe(false);
    }
  });

  it('the list is the same object while nothing changes (balancers keep their state)', () => {
    const { d, eps } = detector(3);
    expect(d.available(0)).toBe(d.available(5));
    for (let i = 0; i < 5; i++) d.record(eps[0]!, 'failure', 0);
    expect(d.available(1)).toBe(d.available(2));
  });

  it('5xx answers and no answer count against; other answers for', () => {
    expect(verdictOf(response(503))).toBe('failure');
    expect(verdictOf(response(502, 'app-unavailable api'))).toBe('failure');
    expect(verdictOf(connectFailure())).toBe('failure');
    expect(verdictOf(reset(false))).toBe('failure');
    expect(verdictOf(response(404))).toBe('success');
    expect(verdictOf(response(200))).toBe('success');
    expect(verdictOf({ kind: 'aborted' })).toBeUndefined();
  });

  it('the balance stage does not offer an ejected endpoint', () => {
    const c = cluster('api', [{ id: 'a' }, { id: 'b' }]);
    for (let i = 0; i < 5; i++) c.outlier.record(c.endpoints[0]!, 'failure', 0);
    const picks = Array.from(
      { length: 4 },
      () => balance({ cluster: c, balancer: c.balancer, tried: undefined, now: 1 })!.id,
    );
    expect(picks).toEqual(['b', 'b', 'b', 'b']);
  });
});
