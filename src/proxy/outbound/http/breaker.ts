/**
 * Circuit breaking of one upstream (after Envoy's): limits on what one sidecar has under way to
 * it, so an overloaded or slow upstream cannot make its callers pile up requests without bound.
 * Past a limit the request is refused at once — 503 `circuit-open api max-requests 1024` — and
 * never queued; the limits are counts, not rates, so the answer is the same on any machine.
 *
 *   max_concurrent_requests  exchanges in flight to the upstream (from the request's arrival to
 *                            the end of its response)
 *   max_pending_requests     attempts to one endpoint waiting for a connection (beyond what its
 *                            pool's connections carry)
 *   max_concurrent_retries   retry attempts in flight; past it a retry is not made and the failed
 *                            answer goes to the app
 *   max_connections          connections to the upstream, across all its instances: each
 *                            instance's pool gets an equal share, at least 1, at most 256
 *                            (Cluster.connectionsPerEndpoint)
 */
import type { LimitSettings } from './resilience.js';

export type CircuitLimit = 'max-requests' | 'max-pending' | 'max-retries';

export class CircuitBreaker {
  /** Replaced in place when a snapshot changes them: what is in flight keeps its slot. */
  limits: LimitSettings;
  /** Exchanges in flight. */
  requests = 0;
  /** Retry attempts in flight. */
  retries = 0;
  /** Refusals by limit (the upstream's figures). */
  readonly overflows: Record<CircuitLimit, number> = { 'max-requests': 0, 'max-pending': 0, 'max-retries': 0 };

  constructor(limits: LimitSettings) {
    this.limits = limits;
  }

  /** A request arrives: taken (release it with `endRequest`), or refused and counted. */
  tryRequest(): boolean {
    if (this.requests >= this.limits.maxConcurrentRequests) {
      this.overflows['max-requests'] += 1;
      return false;
    }
    this.requests += 1;
    return true;
  }

  endRequest(): void {
    this.requests -= 1;
  }

  /**
   * Whether one more attempt may go to an endpoint that has `inFlight` attempts on a pool of
   * `connections`: the ones past the connections wait, and at most max_pending_requests may.
   */
  tryPending(inFlight: number, connections: number): boolean {
    if (inFlight - connections >= this.limits.maxPendingRequests) {
      this.overflows['max-pending'] += 1;
      return false;
    }
    return true;
  }

  /** A retry is about to be made: taken (release with `endRetry`), or refused and counted. */
  tryRetry(): boolean {
    if (this.retries >= this.limits.maxConcurrentRetries) {
      this.overflows['max-retries'] += 1;
      return false;
    }
    this.retries += 1;
    return true;
  }

  endRetry(): void {
    this.retries -= 1;
  }

  /** The limit's value as said in the reason (`max-requests 1024`). */
  detail(limit: CircuitLimit): string {
    const l = this.limits;
    const n =
      limit === 'max-requests'
        ? l.maxConcurrentRequests
        : limit === 'max-pending'
          ? l.maxPendingRequests
          : l.maxConcurrentRetries;
    return `${limit} ${n}`;
  }
}
