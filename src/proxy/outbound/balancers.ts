/**
 * Load balancers: pick one endpoint of an upstream for a request (L7) or connection (L4).
 * Each keeps only its own small state and takes randomness from an injected source, so the
 * tests drive them with fixed inputs and a seeded generator.
 *
 * `exclude` lists endpoints already tried for this request (connect failover), so a
 * balancer never hands out the same endpoint twice for one request.
 */
import type { SnapshotLoadBalancer } from '../snapshot.js';
import { Maglev, RingHash, type Hashable } from './hash-balancers.js';

/** Every balancer: the registration's four and the resolver's consistent-hash two. */
export type BalancerName = SnapshotLoadBalancer['policy'];

export interface Balanceable {
  /** Instance weight from the registry (1..1000). */
  readonly weight: number;
  /** Requests (L7) or connections (L4) in flight to this endpoint right now. */
  readonly inFlight: number;
}

export interface Balancer<E extends Balanceable> {
  readonly name: BalancerName;
  /**
   * One of `endpoints` not in `exclude`, or undefined when none is left. `hash`: the request's
   * hash (consistent-hash balancers place by it; the others ignore it).
   */
  pick(endpoints: readonly E[], exclude?: readonly E[], hash?: number): E | undefined;
}

/** A source of numbers in [0, 1), Math.random's contract. */
export type Random = () => number;

/** mulberry32: small, fast, good enough to spread picks; seeded for reproducible tests. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomIndex(random: Random, n: number): number {
  // Guard against a source returning exactly 1.
  return Math.min(n - 1, Math.floor(random() * n));
}

function remaining<E>(endpoints: readonly E[], exclude: readonly E[] | undefined): readonly E[] {
  return exclude === undefined || exclude.length === 0 ? endpoints : endpoints.filter((e) => !exclude.includes(e));
}

/**
 * The default: each endpoint in turn when their weights are equal, and smooth weighted round
 * robin when they differ (issue 11: `--weight` must count without choosing a balancer). Starts at
 * a random offset so that many proxies do not all begin on the first endpoint. Whether the
 * weights differ is worked out once per endpoint list (the cluster replaces the list, never
 * mutates it, on every snapshot), so the equal-weight pick stays one modulo and one compare.
 */
export class RoundRobin<E extends Balanceable> implements Balancer<E> {
  readonly name = 'round_robin' as const;
  #next: number;
  #seen: readonly E[] | undefined;
  #weighted: SmoothWeighted<E> | undefined;

  constructor(random: Random = Math.random) {
    this.#next = Math.floor(random() * 1024);
  }

  pick(endpoints: readonly E[], exclude?: readonly E[]): E | undefined {
    if (endpoints !== this.#seen) {
      this.#seen = endpoints;
      this.#weighted = weightsDiffer(endpoints) ? (this.#weighted ?? new SmoothWeighted<E>()) : undefined;
    }
    if (this.#weighted !== undefined) return this.#weighted.pick(endpoints, exclude);
    const n = endpoints.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.#next + i) % n;
      const e = endpoints[idx]!;
      if (exclude !== undefined && exclude.includes(e)) continue;
      this.#next = (idx + 1) % n;
      return e;
    }
    return undefined;
  }
}

function weightsDiffer(endpoints: readonly Balanceable[]): boolean {
  for (let i = 1; i < endpoints.length; i++) if (endpoints[i]!.weight !== endpoints[0]!.weight) return true;
  return false;
}

/**
 * Smooth weighted round robin (nginx): every pick adds each endpoint's weight to its
 * current score, takes the highest, and subtracts the total from the winner. Over any
 * window of Σweights picks each endpoint gets exactly its weight, interleaved rather than
 * in bursts (5:1:1 gives a a b a c a a, not a a a a a b c).
 */
export class SmoothWeighted<E extends Balanceable> implements Balancer<E> {
  readonly name = 'weighted' as const;
  readonly #score = new Map<E, number>();
  #seen: readonly E[] | undefined;

  pick(endpoints: readonly E[], exclude?: readonly E[]): E | undefined {
    if (endpoints !== this.#seen) this.#forgetGone(endpoints);
    let total = 0;
    let best: E | undefined;
    let bestScore = -Infinity;
    for (const e of endpoints) {
      if (exclude !== undefined && exclude.includes(e)) continue;
      const score = (this.#score.get(e) ?? 0) + e.weight;
      this.#score.set(e, score);
      total += e.weight;
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    if (best !== undefined) this.#score.set(best, bestScore - total);
    return best;
  }

  #forgetGone(endpoints: readonly E[]): void {
    this.#seen = endpoints;
    const keep = new Set(endpoints);
    for (const e of this.#score.keys()) if (!keep.has(e)) this.#score.delete(e);
  }
}

/**
 * Power of two choices: two distinct endpoints at random, the one with fewer requests in
 * flight wins (the first on a tie). Nearly as good as scanning for the least loaded, at
 * O(1), and it avoids every proxy piling onto the same "least loaded" endpoint at once.
 * `choices` (the resolver's `choice_count`, 2-10) compares more at a time.
 */
export class LeastRequest<E extends Balanceable> implements Balancer<E> {
  readonly name = 'least_request' as const;
  readonly #random: Random;
  readonly #choices: number;

  constructor(random: Random = Math.random, choices = 2) {
    this.#random = random;
    this.#choices = choices;
  }

  pick(endpoints: readonly E[], exclude?: readonly E[]): E | undefined {
    const candidates = remaining(endpoints, exclude);
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const i = randomIndex(this.#random, n);
    let j = randomIndex(this.#random, n - 1);
    if (j >= i) j += 1;
    const a = candidates[i]!;
    const b = candidates[j]!;
    let best = b.inFlight < a.inFlight ? b : a;
    // More choices: further picks at random (with replacement: cheap, and as good for small counts).
    for (let k = 2; k < this.#choices && k < n; k++) {
      const c = candidates[randomIndex(this.#random, n)]!;
      if (c.inFlight < best.inFlight) best = c;
    }
    return best;
  }
}

/** Uniformly at random. */
export class RandomPick<E extends Balanceable> implements Balancer<E> {
  readonly name = 'random' as const;
  readonly #random: Random;

  constructor(random: Random = Math.random) {
    this.#random = random;
  }

  pick(endpoints: readonly E[], exclude?: readonly E[]): E | undefined {
    const candidates = remaining(endpoints, exclude);
    return candidates.length === 0 ? undefined : candidates[randomIndex(this.#random, candidates.length)];
  }
}

/** A balancer by name, or by a resolver's full spec (choice count, ring sizes). */
export function createBalancer<E extends Hashable>(
  spec: BalancerName | SnapshotLoadBalancer,
  random: Random = Math.random,
): Balancer<E> {
  const s = typeof spec === 'string' ? { policy: spec } : spec;
  switch (s.policy) {
    case 'round_robin':
      return new RoundRobin<E>(random);
    case 'weighted':
      return new SmoothWeighted<E>();
    case 'least_request':
      return new LeastRequest<E>(random, s.choiceCount);
    case 'random':
      return new RandomPick<E>(random);
    case 'ring_hash':
      return new RingHash<E>(random, s.minRingSize, s.maxRingSize);
    case 'maglev':
      return new Maglev<E>(random);
  }
}
