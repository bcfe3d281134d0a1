/**
 * What resilience did for one upstream, as counters: the sidecar's `GET /stats` shows them
 * under the upstream (`resilience`), and they are what a user reads to see that retries stay
 * inside the budget, that timeouts happen, that circuits open and endpoints get ejected.
 */
export class ResilienceFigures {
  /** Attempts that were retries (not failover: that is free and not counted here). */
  retries = 0;
  /** Retries the conditions allowed but the retry budget refused. */
  retryBudgetExhausted = 0;
  /** Exchanges answered 504 or cut because a request or per-try timeout passed. */
  timeouts = 0;

  toJSON(): { retries: number; retryBudgetExhausted: number; timeouts: number } {
    return {
      retries: this.retries,
      retryBudgetExhausted: this.retryBudgetExhausted,
      timeouts: this.timeouts,
    };
  }
}
