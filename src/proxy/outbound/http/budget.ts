/**
 * The retry budget of one upstream (after Linkerd's): over a sliding window (`ttl`, 10 s by
 * default), retries may add at most `percent` of the requests (20 %) plus `minRetriesPerSecond`
 * for each second the window covers (10/s), so a failing upstream gets at most ≈ 1.2× its normal
 * load from retries, while a quiet one can still retry now and then. When it is spent the
 * failed answer goes to the caller as it is.
 *
 * The window is ten buckets of ttl/10; counts in buckets older than the window are dropped as
 * time moves on. The per-second allowance grows with the time the budget has existed (up to the
 * window; one second from the start), so a burst right after start cannot spend a whole
 * window's reserve at once.
 */
import type { RetryBudgetSettings } from './resilience.js';

const BUCKETS = 10;

function slot(i: number): number {
  return ((i % BUCKETS) + BUCKETS) % BUCKETS;
}

export class RetryBudget {
  readonly #settings: RetryBudgetSettings;
  readonly #width: number;
  readonly #requests = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  /** Index (time / width) of the newest bucket written. */
  #head = 0;
  readonly #createdAt: number;
  /** Retries refused because the budget was spent (the upstream's figure). */
  exhausted = 0;

  constructor(settings: RetryBudgetSettings, now: number) {
    this.#settings = settings;
    this.#width = settings.ttlMs / BUCKETS;
    this.#createdAt = now;
    this.#head = Math.floor(now / this.#width);
  }

  get settings(): RetryBudgetSettings {
    return this.#settings;
  }

  /** Drops buckets that left the window by `now`. */
  #advance(now: number): number {
    const at = Math.floor(now / this.#width);
    if (at > this.#head) {
      const clear = Math.min(at - this.#head, BUCKETS);
      for (let i = 1; i <= clear; i++) {
        const b = slot(this.#head + i);
        this.#requests[b] = 0;
        this.#retries[b] = 0;
      }
      this.#head = at;
    }
    return slot(this.#head);
  }

  /** A request (not a retry) begins: it adds to what retries may spend. */
  request(now: number): void {
    this.#requests[this.#advance(now)]! += 1;
  }

  /** Takes one retry from the budget, or says it is spent (and counts that). */
  withdraw(now: number): boolean {
    const b = this.#advance(now);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    // A new budget counts one second already, so a sidecar can retry from its first request.
    const covered = Math.min(this.#settings.ttlMs, Math.max(1000, now - this.#createdAt)) / 1000;
    const allowed = (this.#settings.percent / 100) * requests + this.#settings.minRetriesPerSecond * covered;
    if (retries + 1 > allowed) {
      this.exhausted += 1;
      return false;
    }
    this.#retries[b]! += 1;
    return true;
  }
}
