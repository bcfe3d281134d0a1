/**
 * Retry as a policy, apart from failover: which outcomes may be tried again (the conditions a
 * route or upstream lists), for which methods, and how long to wait before the next try.
 * Failover (nothing reached an app) is free and decided in outcome.ts; a retry sends a request
 * that may have reached an app again, so it is bounded (attempts, budget, concurrent retries)
 * and, by default, only for methods that are safe to repeat.
 */
import type { Random } from '../balancers.js';
import type { Outcome } from './outcome.js';
import type { RetrySettings } from './resilience.js';

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** 502, 503 and 504: a gateway (or the mesh on the far side) could not get an answer. */
function gatewayError(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

/**
 * Whether `o` meets one of the retry conditions: `connect-failure`, `reset` (the connection
 * dropped before the response), `5xx` (any 5xx, and a timeout or reset: no answer at all),
 * `gateway-error` (502/503/504, and a timeout), or one of the listed statuses.
 */
export function retryable(o: Outcome, s: RetrySettings): boolean {
  const on = s.retryOn;
  switch (o.kind) {
    case 'connect-failure':
      return on.has('connect-failure');
    case 'reset':
      return on.has('reset') || on.has('5xx');
    case 'timeout':
      return on.has('5xx') || on.has('gateway-error');
    case 'response':
      return (
        s.retryOnStatusCodes.has(o.status) ||
        (on.has('5xx') && o.status >= 500 && o.status <= 599) ||
        (on.has('gateway-error') && gatewayError(o.status))
      );
    case 'aborted':
      return false;
  }
}

/**
 * Full-jitter exponential backoff: before retry number `n` (1 for the first), a wait drawn
 * evenly from [0, min(max, base × 2^(n-1))), so retries of many callers do not come in waves.
 */
export function backoffMs(n: number, s: RetrySettings, random: Random): number {
  const ceiling = Math.min(s.maxIntervalMs, s.baseIntervalMs * 2 ** Math.min(n - 1, 30));
  return Math.floor(random() * ceiling);
}
