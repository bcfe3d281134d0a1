/**
 * Wrong bearer tokens, limited per source. Token secrets are 256 random bits, so guessing is
 * hopeless anyway; the limit keeps a guesser from costing the registry work and fills the log
 * with one clear line per source instead of a flood. Each source has a bucket of `burst`
 * attempts that refills at `refillPerSecond`; a wrong token takes one. While a source's bucket
 * is empty, every request of it that carries a token is answered 429 with Retry-After before
 * the token is looked at (so a guess made then cannot succeed either). Requests that
 * authenticate with a node certificate are not affected.
 *
 * Memory is bounded: at most `maxSources` buckets, least recently used dropped first. IPv6
 * sources count per /64, the block one host usually holds, so one host cannot get a fresh
 * bucket per address.
 */
import { isIPv6 } from 'node:net';

export interface WrongTokenLimitOptions {
  /** Wrong tokens a source may send at once. */
  burst?: number;
  /** Wrong tokens a source gets back per second. */
  refillPerSecond?: number;
  /** Sources remembered at most. */
  maxSources?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export const WRONG_TOKEN_BURST = 10;
export const WRONG_TOKEN_REFILL_PER_SECOND = 1 / 6;
export const WRONG_TOKEN_MAX_SOURCES = 10_000;

export class WrongTokenLimiter {
  readonly #burst: number;
  readonly #rate: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(opts: WrongTokenLimitOptions = {}) {
    this.#burst = opts.burst ?? WRONG_TOKEN_BURST;
    this.#rate = opts.refillPerSecond ?? WRONG_TOKEN_REFILL_PER_SECOND;
    this.#max = opts.maxSources ?? WRONG_TOKEN_MAX_SOURCES;
    this.#now = opts.now ?? Date.now;
  }

  /** Seconds until `source` may try a token again, or undefined when it may now. */
  retryAfter(source: string): number | undefined {
    const b = this.#refilled(sourceKey(source));
    if (!b || b.tokens >= 1) return undefined;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#rate));
  }

  /** Counts a wrong token from `source`; says whether the source is limited now. */
  fail(source: string): { limited: boolean } {
    const key = sourceKey(source);
    const b = this.#refilled(key) ?? { tokens: this.#burst, at: this.#now() };
    b.tokens = Math.max(0, b.tokens - 1);
    // Re-inserting keeps the Map in least-recently-used order.
    this.#buckets.delete(key);
    this.#buckets.set(key, b);
    while (this.#buckets.size > this.#max) this.#buckets.delete(this.#buckets.keys().next().value!);
    return { limited: b.tokens < 1 };
  }

  /** Sources remembered (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }

  #refilled(key: string): Bucket | undefined {
    const b = this.#buckets.get(key);
    if (!b) return undefined;
    const now = this.#now();
    b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
    b.at = now;
    if (b.tokens >= this.#burst) {
      // Back to a full bucket: nothing worth remembering.
      this.#buckets.delete(key);
      return undefined;
    }
    return b;
  }
}

/** The address a limit applies to: IPv4 as it is (also when mapped into IPv6), IPv6 by its /64. */
export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
