/**
 * Consistent-hash balancers (service-resolver `ring_hash` and `maglev`): one request hash
 * (./http/hash.ts: a header, cookie, query parameter or the caller's address) always lands on the
 * same endpoint while the endpoint list stays, and when an endpoint comes or goes only the keys
 * it held move. Both count instance weights. A request without a hash gets a random endpoint.
 *
 * The structure (ring or table) is built once per endpoint list: the cluster replaces the list,
 * never mutates it, so a changed list is a new array.
 */
import type { Balanceable, Balancer, Random } from './balancers.js';
import { fnv1a, mix32 } from './http/hash.js';

/** What the hash balancers need of an endpoint: a stable id to place it by. */
export interface Hashable extends Balanceable {
  readonly id: string;
}

function randomOf<E>(candidates: readonly E[], random: Random): E | undefined {
  if (candidates.length === 0) return undefined;
  return candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))];
}

function without<E>(endpoints: readonly E[], exclude: readonly E[] | undefined): readonly E[] {
  return exclude === undefined || exclude.length === 0 ? endpoints : endpoints.filter((e) => !exclude.includes(e));
}

export const DEFAULT_MIN_RING = 1024;
export const DEFAULT_MAX_RING = 8_388_608;

/**
 * Ketama-style ring: each endpoint gets points in proportion to its weight (at least one), the
 * request goes to the first point at or after its hash, wrapping round.
 */
export class RingHash<E extends Hashable> implements Balancer<E> {
  readonly name = 'ring_hash' as const;
  readonly #random: Random;
  readonly #min: number;
  readonly #max: number;
  #seen: readonly E[] | undefined;
  #points = new Uint32Array(0);
  #owners: E[] = [];

  constructor(random: Random = Math.random, minRingSize = DEFAULT_MIN_RING, maxRingSize = DEFAULT_MAX_RING) {
    this.#random = random;
    this.#min = minRingSize;
    this.#max = Math.max(minRingSize, maxRingSize);
  }

  /** The ring size in use (for tests and stats). */
  get size(): number {
    return this.#points.length;
  }

  #build(endpoints: readonly E[]): void {
    this.#seen = endpoints;
    let total = 0;
    let least = Infinity;
    for (const e of endpoints) {
      total += e.weight;
      least = Math.min(least, e.weight);
    }
    // Big enough that the lightest endpoint gets a point, within [min, max].
    const size = Math.min(this.#max, Math.max(this.#min, Math.ceil(total / (least || 1))));
    const entries: Array<{ h: number; e: E }> = [];
    for (const e of endpoints) {
      const n = Math.max(1, Math.round((size * e.weight) / total));
      for (let i = 0; i < n; i++) entries.push({ h: mix32(fnv1a(`${e.id}_${i}`)), e });
    }
    entries.sort((a, b) => a.h - b.h);
    this.#points = Uint32Array.from(entries, (x) => x.h);
    this.#owners = entries.map((x) => x.e);
  }

  pick(endpoints: readonly E[], exclude?: readonly E[], hash?: number): E | undefined {
    if (hash === undefined) return randomOf(without(endpoints, exclude), this.#random);
    if (endpoints !== this.#seen) this.#build(endpoints);
    const n = this.#points.length;
    if (n === 0) return undefined;
    // The first point at or after the hash.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < n; i++) {
      const e = this.#owners[(lo + i) % n]!;
      if (exclude === undefined || !exclude.includes(e)) return e;
    }
    return undefined;
  }
}

/** Envoy's default Maglev table size (a prime). */
export const MAGLEV_TABLE_SIZE = 65537;

/**
 * Maglev (Google's): a lookup table of a prime size filled by each endpoint's own permutation,
 * in turns weighted by the endpoint's weight, so each endpoint holds a near-equal (weighted)
 * share and one change moves few entries. A lookup is one array read.
 */
export class Maglev<E extends Hashable> implements Balancer<E> {
  readonly name = 'maglev' as const;
  readonly #random: Random;
  readonly #size: number;
  #seen: readonly E[] | undefined;
  #table: Int32Array = new Int32Array(0);

  constructor(random: Random = Math.random, tableSize = MAGLEV_TABLE_SIZE) {
    this.#random = random;
    this.#size = tableSize;
  }

  #build(endpoints: readonly E[]): void {
    this.#seen = endpoints;
    const m = this.#size;
    const table = new Int32Array(endpoints.length === 0 ? 0 : m).fill(-1);
    if (endpoints.length > 0) {
      const offset = endpoints.map((e) => fnv1a(e.id) % m);
      const skip = endpoints.map((e) => (mix32(fnv1a(`${e.id}#skip`)) % (m - 1)) + 1);
      const next = new Array<number>(endpoints.length).fill(0);
      const credit = new Array<number>(endpoints.length).fill(0);
      let heaviest = 0;
      for (const e of endpoints) heaviest = Math.max(heaviest, e.weight);
      let filled = 0;
      while (filled < m) {
        for (let i = 0; i < endpoints.length && filled < m; i++) {
          credit[i]! += endpoints[i]!.weight / heaviest;
          while (credit[i]! >= 1 && filled < m) {
            credit[i]! -= 1;
            let c = (offset[i]! + next[i]! * skip[i]!) % m;
            while (table[c] !== -1) {
              next[i]! += 1;
              c = (offset[i]! + next[i]! * skip[i]!) % m;
            }
            table[c] = i;
            next[i]! += 1;
            filled += 1;
          }
        }
      }
    }
    this.#table = table;
  }

  pick(endpoints: readonly E[], exclude?: readonly E[], hash?: number): E | undefined {
    if (hash === undefined) return randomOf(without(endpoints, exclude), this.#random);
    if (endpoints !== this.#seen) this.#build(endpoints);
    const m = this.#table.length;
    if (m === 0) return undefined;
    const at = hash % m;
    const first = endpoints[this.#table[at]!]!;
    if (exclude === undefined || !exclude.includes(first)) return first;
    if (exclude.length >= endpoints.length) return undefined;
    // Failover: the next entries of the table, which other endpoints hold in their shares.
    for (let i = 1; i < m; i++) {
      const e = endpoints[this.#table[(at + i) % m]!]!;
      if (!exclude.includes(e)) return e;
    }
    return undefined;
  }
}
