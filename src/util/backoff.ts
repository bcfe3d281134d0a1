/** Exponential backoff with full jitter, bounded: every retry loop (agent, dashboard) uses this. */
export class Backoff {
  #attempt = 0;

  readonly #minMs;
  readonly #maxMs;
  readonly #random: () => number;

  constructor(minMs = 500, maxMs = 30_000, random: () => number = Math.random) {
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#random = random;
  }

  /** Delay before the next try: grows ×2 per failure up to maxMs, jittered to 50–100% of that. */
  next(): number {
    const ceiling = Math.min(this.#maxMs, this.#minMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(ceiling * (0.5 + this.#random() / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get failures(): number {
    return this.#attempt;
  }
}

/** A delay spread ±spread around base, so many agents do not act in lockstep. */
export function jittered(baseMs: number, spread = 0.2, random: () => number = Math.random): number {
  return Math.round(baseMs * (1 - spread + 2 * spread * random()));
}
