/**
 * One try of a request on one endpoint: the value the pipeline records instead of flags on the
 * exchange. `cause` says why it was made — the first try, failover (nothing reached an app
 * before, free, each endpoint once), a stale reused connection sent again, or a retry (policy:
 * the previous try may have reached an app; budgeted, idempotent methods only, after a backoff),
 * which stays apart from failover.
 */
import type { Endpoint } from '../endpoint.js';
import type { CircuitBreaker } from './breaker.js';
import type { Outcome } from './outcome.js';

export type AttemptCause = 'first' | 'failover' | 'stale' | 'retry';

export class Attempt {
  readonly endpoint: Endpoint;
  /** 1 for the first try of the request. */
  readonly number: number;
  readonly cause: AttemptCause;
  /** performance.now() when it began. */
  readonly startedAt: number;
  outcome: Outcome | undefined;
  /** A retry holds one of its upstream's concurrent-retry slots until it ends. */
  retrySlot: CircuitBreaker | undefined;

  /** The attempt is over (abandoned, or its answer relayed to the end): its slot goes back. */
  end(): void {
    this.retrySlot?.endRetry();
    this.retrySlot = undefined;
  }

  constructor(endpoint: Endpoint, number: number, cause: AttemptCause, startedAt: number) {
    this.endpoint = endpoint;
    this.number = number;
    this.cause = cause;
    this.startedAt = startedAt;
  }
}
