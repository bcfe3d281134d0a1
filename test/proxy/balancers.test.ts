import { describe, expect, it } from 'vitest';
import {
  createBalancer,
  LeastRequest,
  RandomPick,
  RoundRobin,
  seededRandom,
  SmoothWeighted,
} from '../../src/proxy/outbound/balancers.js';

interface Ep {
  id: string;
  weight: number;
  inFlight: number;
}

const ep = (id: string, weight = 1, inFlight = 0): Ep => ({ id, weight, inFlight });
const ids = (picks: Array<Ep | undefined>) => picks.map((p) => p?.id ?? '-').join('');

/** A "random" source that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('round_robin', () => {
  it('visits each endpoint in turn from its random start', () => {
    const list = [ep('a'), ep('b'), ep('c')];
    const rr = new RoundRobin<Ep>(sequence(0)); // start offset 0
    expect(ids(Array.from({ length: 7 }, () => rr.pick(list)))).toBe('abcabca');
    const rr2 = new RoundRobin<Ep>(sequence(1 / 1024)); // start offset 1
    expect(ids(Array.from({ length: 4 }, () => rr2.pick(list)))).toBe('bcab');
  });

  it('skips excluded endpoints and returns undefined when all are excluded', () => {
    const [a, b, c] = [ep('a'), ep('b'), ep('c')];
    const rr = new RoundRobin<Ep>(sequence(0));
    expect(rr.pick([a, b, c], [a])?.id).toBe('b');
    expect(rr.pick([a, b, c], [c])?.id).toBe('a');
    expect(rr.pick([a, b, c], [a, b, c])).toBeUndefined();
    expect(rr.pick([])).toBeUndefined();
  });

  it('keeps going when the list shrinks', () => {
    const rr = new RoundRobin<Ep>(sequence(0));
    const list = [ep('a'), ep('b'), ep('c'), ep('d')];
    rr.pick(list);
    rr.pick(list);
    rr.pick(list); // next index 3
    expect(rr.pick([ep('x'), ep('y')])?.id).toBe('y'); // 3 % 2 = 1
  });
  it('counts weights by default: when they differ, it is smooth weighted round robin', () => {
    const list = [ep('a', 3), ep('b', 1)];
    const rr = new RoundRobin<Ep>(sequence(0));
    expect(ids(Array.from({ length: 8 }, () => rr.pick(list)))).toBe('aabaaaba');
    // Exclusions still hold on the weighted path.
    expect(rr.pick(list, [list[0]!])?.id).toBe('b');
  });

  it('goes back to plain turns when a new endpoint list has equal weights again', () => {
    const rr = new RoundRobin<Ep>(sequence(0));
    const [a, b] = [ep('a', 5), ep('b', 1)];
    expect(ids([rr.pick([a, b]), rr.pick([a, b])])).toBe('aa');
    const equal = [ep('x', 2), ep('y', 2)];
    const picks = ids(Array.from({ length: 4 }, () => rr.pick(equal)));
    expect(['xyxy', 'yxyx']).toContain(picks);
  });
});

describe('weighted (smooth weighted round robin)', () => {
  it('interleaves by weight: 5:1:1 → a a b a c a a', () => {
    const list = [ep('a', 5), ep('b', 1), ep('c', 1)];
    const w = new SmoothWeighted<Ep>();
    expect(ids(Array.from({ length: 14 }, () => w.pick(list)))).toBe('aabacaaaabacaa');
  });

  it('gives each endpoint exactly its weight over every full cycle', () => {
    const list = [ep('a', 3), ep('b', 2), ep('c', 1)];
    const w = new SmoothWeighted<Ep>();
    const counts: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      const p = w.pick(list)!;
      counts[p.id] = (counts[p.id] ?? 0) + 1;
    }
    expect(counts).toEqual({ a: 30, b: 20, c: 10 });
  });

  it('leaves excluded endpoints out and forgets endpoints that are gone', () => {
    const [a, b] = [ep('a', 10), ep('b', 1)];
    const w = new SmoothWeighted<Ep>();
    expect(w.pick([a, b], [a])?.id).toBe('b');
    expect(w.pick([a, b], [a, b])).toBeUndefined();
    const c = ep('c', 1);
    expect(ids([w.pick([c]), w.pick([c])])).toBe('cc');
  });
});

describe('least_request (power of two choices)', () => {
  it('of the two sampled endpoints takes the one with fewer requests in flight', () => {
    const list = [ep('a', 1, 5), ep('b', 1, 1), ep('c', 1, 3)];
    // i = floor(0.0*3) = 0 (a), j = floor(0.5*2) = 1 → ≥ i → 2 (c): c has fewer than a.
    expect(new LeastRequest<Ep>(sequence(0, 0.5)).pick(list)?.id).toBe('c');
    // i = 2 (c), j = 0 (a): c wins again.
    expect(new LeastRequest<Ep>(sequence(0.9, 0)).pick(list)?.id).toBe('c');
    // i = 1 (b), j = 0 (a): b.
    expect(new LeastRequest<Ep>(sequence(0.4, 0)).pick(list)?.id).toBe('b');
  });

  it('never samples the same endpoint twice and keeps the first on a tie', () => {
    const list = [ep('a'), ep('b')];
    // i = 1 (b), j = 0 → a; tie → the first sampled (b).
    expect(new LeastRequest<Ep>(sequence(0.7, 0.2)).pick(list)?.id).toBe('b');
  });

  it('spreads load towards idle endpoints under a seeded random source', () => {
    const list = [ep('busy', 1, 100), ep('idle-1'), ep('idle-2'), ep('idle-3')];
    const lr = new LeastRequest<Ep>(seededRandom(42));
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const p = lr.pick(list)!;
      counts[p.id] = (counts[p.id] ?? 0) + 1;
    }
    // Any other endpoint beats "busy", so it is never picked.
    expect(counts.busy).toBeUndefined();
    for (const id of ['idle-1', 'idle-2', 'idle-3']) expect(counts[id]).toBeGreaterThan(200);
  });

  it('honours exclusions', () => {
    const [a, b, c] = [ep('a', 1, 0), ep('b', 1, 9), ep('c', 1, 9)];
    const lr = new LeastRequest<Ep>(seededRandom(1));
    for (let i = 0; i < 20; i++) expect(lr.pick([a, b, c], [a])?.id).not.toBe('a');
    expect(lr.pick([a], [a])).toBeUndefined();
    expect(lr.pick([a, b], [a])?.id).toBe('b');
  });
});

describe('random', () => {
  it('maps the random source onto the remaining endpoints', () => {
    const list = [ep('a'), ep('b'), ep('c')];
    expect(ids([0, 0.34, 0.99].map((v) => new RandomPick<Ep>(() => v).pick(list)))).toBe('abc');
    expect(new RandomPick<Ep>(() => 0).pick(list, [list[0]!])?.id).toBe('b');
    expect(new RandomPick<Ep>(() => 0.999999).pick([])).toBeUndefined();
  });

  it('is roughly uniform with a seeded source, and reproducible', () => {
    const list = [ep('a'), ep('b'), ep('c'), ep('d')];
    const run = () => {
      const r = new RandomPick<Ep>(seededRandom(7));
      return Array.from({ length: 400 }, () => r.pick(list)!.id);
    };
    const first = run();
    expect(run()).toEqual(first);
    for (const id of ['a', 'b', 'c', 'd']) {
      const n = first.filter((x) => x === id).length;
      expect(n).toBeGreaterThan(60);
      expect(n).toBeLessThan(140);
    }
  });
});

describe('createBalancer', () => {
  it('makes each named balancer', () => {
    for (const name of ['round_robin', 'weighted', 'least_request', 'random'] as const) {
      expect(createBalancer<Ep>(name, seededRandom(3)).name).toBe(name);
    }
  });
});
