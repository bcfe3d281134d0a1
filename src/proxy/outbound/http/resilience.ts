/**
 * An upstream's resilience settings as the outbound uses them: timeouts, retries, the retry
 * budget, circuit limits and outlier ejection, in milliseconds and counts. The defaults are the
 * ones users already trust from other meshes (Envoy, Linkerd, Consul; docs/POLICY.md), so an
 * upstream without any config entry gets them; a config entry (compiled into the snapshot's
 * `resilience`) overrides field by field, and a route's own settings override the upstream's.
 */
import type { SnapshotResilience, SnapshotRetry, SnapshotRouteResilience, RETRY_CONDITIONS } from '../../snapshot.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../dial.js';

export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

export interface TimeoutSettings {
  /** The whole exchange, every attempt and the response body included (0: none). */
  readonly requestTimeoutMs: number;
  /** One attempt until its response head (0: only the request timeout). */
  readonly perTryTimeoutMs: number;
}

export interface RetrySettings {
  /** Retries after the first attempt (Consul's num_retries): 1 means 2 attempts in all. */
  readonly numRetries: number;
  readonly retryOn: ReadonlySet<RetryCondition>;
  /** Response statuses retried besides the conditions. */
  readonly retryOnStatusCodes: ReadonlySet<number>;
  /** Retry POST, PATCH and other non-idempotent methods too (only a route should say so). */
  readonly retryNonIdempotent: boolean;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
}

export interface RetryBudgetSettings {
  /** Retries may add this share of the requests (20: 20 %)... */
  readonly percent: number;
  /** ...plus this many per second, so a quiet upstream can still retry. */
  readonly minRetriesPerSecond: number;
  /** Over this window. */
  readonly ttlMs: number;
}

export interface LimitSettings {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxConcurrentRequests: number;
  readonly maxConcurrentRetries: number;
}

export interface OutlierSettings {
  /** How often ejections are reviewed (ejected endpoints come back at the first review past their time). */
  readonly intervalMs: number;
  /** Consecutive 5xx / gateway errors / connect failures that eject an endpoint (0: never). */
  readonly consecutiveErrors: number;
  /** An endpoint is ejected for this × the number of times it has been ejected. */
  readonly baseEjectionTimeMs: number;
  /** At most this share of the endpoints is ejected at once (at least one when it is > 0). */
  readonly maxEjectionPercent: number;
}

/** What a route decides per request. */
export interface RouteSettings extends TimeoutSettings {
  readonly retry: RetrySettings;
}

export interface Resilience extends RouteSettings {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retryBudget: RetryBudgetSettings;
  readonly limits: LimitSettings;
  readonly outlier: OutlierSettings;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

export const DEFAULT_TIMEOUTS: TimeoutSettings = { requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS, perTryTimeoutMs: 0 };

export const DEFAULT_RETRY: RetrySettings = {
  numRetries: 1,
  retryOn: new Set<RetryCondition>(['connect-failure', 'reset', 'gateway-error']),
  retryOnStatusCodes: new Set<number>(),
  retryNonIdempotent: false,
  baseIntervalMs: 25,
  maxIntervalMs: 250,
};

export const DEFAULT_RESILIENCE: Resilience = {
  ...DEFAULT_TIMEOUTS,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  retry: DEFAULT_RETRY,
  retryBudget: { percent: 20, minRetriesPerSecond: 10, ttlMs: 10_000 },
  limits: { maxConnections: 1024, maxPendingRequests: 1024, maxConcurrentRequests: 1024, maxConcurrentRetries: 3 },
  outlier: { intervalMs: 10_000, consecutiveErrors: 5, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 },
};

function retryOver(base: RetrySettings, r: SnapshotRetry | undefined): RetrySettings {
  if (r === undefined) return base;
  return {
    numRetries: r.numRetries ?? base.numRetries,
    retryOn: r.retryOn === undefined ? base.retryOn : new Set(r.retryOn),
    retryOnStatusCodes: r.retryOnStatusCodes === undefined ? base.retryOnStatusCodes : new Set(r.retryOnStatusCodes),
    retryNonIdempotent: r.retryNonIdempotent ?? base.retryNonIdempotent,
    baseIntervalMs: r.baseIntervalMs ?? base.baseIntervalMs,
    maxIntervalMs: Math.max(r.maxIntervalMs ?? base.maxIntervalMs, r.baseIntervalMs ?? base.baseIntervalMs),
  };
}

/** The upstream's settings: the snapshot's (from service-defaults) over the defaults. */
export function resolveResilience(s: SnapshotResilience | undefined, d: Resilience = DEFAULT_RESILIENCE): Resilience {
  if (s === undefined) return d;
  return {
    connectTimeoutMs: s.connectTimeoutMs ?? d.connectTimeoutMs,
    requestTimeoutMs: s.requestTimeoutMs ?? d.requestTimeoutMs,
    perTryTimeoutMs: s.perTryTimeoutMs ?? d.perTryTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs ?? d.idleTimeoutMs,
    retry: retryOver(d.retry, s.retry),
    retryBudget: { ...d.retryBudget, ...defined(s.retryBudget) },
    limits: { ...d.limits, ...defined(s.limits) },
    outlier: { ...d.outlier, ...defined(s.outlier) },
  };
}

/** A route's settings: its own (service-router destination) over the upstream's. */
export function routeSettings(base: RouteSettings, r: SnapshotRouteResilience | undefined): RouteSettings {
  if (r === undefined) return base;
  return {
    requestTimeoutMs: r.requestTimeoutMs ?? base.requestTimeoutMs,
    perTryTimeoutMs: r.perTryTimeoutMs ?? base.perTryTimeoutMs,
    retry: retryOver(base.retry, r.retry),
  };
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  if (o === undefined) return {};
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}

/** `15s`, `250ms`: how a timeout is named in reasons and logs. */
export function formatTimeout(ms: number): string {
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
