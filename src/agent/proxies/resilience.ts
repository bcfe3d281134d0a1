/**
 * Compiles the resilience fields of config entries into the proxy snapshot (pure): durations to
 * milliseconds, snake_case to the snapshot's names. Only what an entry sets is carried; the
 * proxy fills in its defaults (src/proxy/outbound/http/resilience.ts), so no entry means no
 * `resilience` at all.
 */
import { durationMs } from '../../api/config-resilience.js';
import type { RouteDestination, ServiceDefaults } from '../../api/config-entries.js';
import type { SnapshotResilience, SnapshotRetry, SnapshotRouteResilience } from '../../proxy/snapshot.js';

function ms(d: string | undefined): number | undefined {
  return d === undefined ? undefined : durationMs(d);
}

/** Drops undefined fields; undefined when none is left. */
function compact<T extends object>(o: T): T | undefined {
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return Object.keys(out).length === 0 ? undefined : out;
}

type RetryInput = Pick<
  NonNullable<ServiceDefaults['retry']>,
  'num_retries' | 'retry_on' | 'retry_on_status_codes' | 'retry_non_idempotent'
> & { base_interval?: string | undefined; max_interval?: string | undefined };

function retry(r: RetryInput | undefined): SnapshotRetry | undefined {
  if (r === undefined) return undefined;
  return compact({
    numRetries: r.num_retries,
    retryOn: r.retry_on,
    retryOnStatusCodes: r.retry_on_status_codes,
    retryNonIdempotent: r.retry_non_idempotent,
    baseIntervalMs: ms(r.base_interval),
    maxIntervalMs: ms(r.max_interval),
  });
}

/** The upstream's settings from its service-defaults. */
export function compileResilience(d: ServiceDefaults | undefined): SnapshotResilience | undefined {
  if (d === undefined) return undefined;
  const b = d.retry_budget;
  const l = d.limits;
  const p = d.passive_health_check;
  return compact({
    connectTimeoutMs: ms(d.connect_timeout),
    requestTimeoutMs: ms(d.request_timeout),
    perTryTimeoutMs: ms(d.per_try_timeout),
    idleTimeoutMs: ms(d.idle_timeout),
    retry: retry(d.retry),
    retryBudget: b && compact({ percent: b.percent, minRetriesPerSecond: b.min_retries_per_second, ttlMs: ms(b.ttl) }),
    limits:
      l &&
      compact({
        maxConnections: l.max_connections,
        maxPendingRequests: l.max_pending_requests,
        maxConcurrentRequests: l.max_concurrent_requests,
        maxConcurrentRetries: l.max_concurrent_retries,
      }),
    outlier:
      p &&
      compact({
        intervalMs: ms(p.interval),
        consecutiveErrors: p.max_failures,
        baseEjectionTimeMs: ms(p.base_ejection_time),
        maxEjectionPercent: p.max_ejection_percent,
      }),
  });
}

/** A router route's own timeouts and retries. */
export function compileRouteResilience(d: RouteDestination | undefined): SnapshotRouteResilience | undefined {
  if (d === undefined) return undefined;
  return compact({
    requestTimeoutMs: ms(d.request_timeout),
    perTryTimeoutMs: ms(d.per_try_timeout),
    retry: retry(d),
  });
}
