/**
 * The resilience fields of config entries (issue 15): timeouts, retries, the retry budget,
 * circuit limits and outlier ejection. `service-defaults` sets them for every caller of a
 * service; a `service-router` route's destination sets its own timeouts and retries. Names
 * after Consul's (`num_retries`, `retry_on`, `retry_on_status_codes`, `limits`,
 * `passive_health_check`) and Envoy's; every field is optional and the proxy's defaults stand in
 * for what is left out (docs/POLICY.md lists them). Durations are written as text (`15s`,
 * `250ms`) and stored as written.
 */
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `1m30s` → 90000; undefined when it is not a duration. */
export function durationMs(s: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    end = re.lastIndex;
  }
  return s.length > 0 && end === s.length ? Math.round(total) : undefined;
}

/** A duration as text, from `min` to `max` milliseconds; `0s` only when `zero` (meaning "none"). */
function duration(minMs: number, maxMs: number, zero = false) {
  const range = `between ${minMs} ms and ${maxMs / 1000} s${zero ? ', or 0s for none' : ''}`;
  return z
    .string()
    .max(32)
    .refine((s) => {
      const ms = durationMs(s);
      return ms !== undefined && ((zero && ms === 0) || (ms >= minMs && ms <= maxMs));
    }, `must be a duration like 250ms, 15s or 1m, ${range}`);
}

export const RETRY_ON = ['connect-failure', 'reset', '5xx', 'gateway-error'] as const;

/** The retry fields, the same in service-defaults' `retry` and on a router destination. */
const retryFields = {
  /** Retries after the first attempt: 1 means 2 attempts in all. */
  num_retries: z.number().int().min(0).max(10).optional(),
  retry_on: z.array(z.enum(RETRY_ON)).max(8).optional(),
  retry_on_status_codes: z.array(z.number().int().min(100).max(599)).max(32).optional(),
  /** POST, PATCH and other methods that may not be repeated safely are retried too. */
  retry_non_idempotent: z.boolean().optional(),
};

const timeoutFields = {
  /** The whole exchange, all attempts and the response body; 0s: none. */
  request_timeout: duration(1, 3_600_000, true).optional(),
  /** One attempt until its response head; 0s: none. */
  per_try_timeout: duration(1, 3_600_000, true).optional(),
};

const limit = z.number().int().min(1).max(1_000_000);

/** The fields service-defaults gains. */
export const serviceDefaultsResilience = {
  connect_timeout: duration(1, 600_000).optional(),
  ...timeoutFields,
  /** How long an idle pooled connection to an instance is kept. */
  idle_timeout: duration(1, 3_600_000).optional(),
  retry: z
    .object({
      ...retryFields,
      base_interval: duration(1, 60_000).optional(),
      max_interval: duration(1, 600_000).optional(),
    })
    .strict()
    .optional(),
  retry_budget: z
    .object({
      percent: z.number().min(0).max(100).optional(),
      min_retries_per_second: z.number().int().min(0).max(100_000).optional(),
      ttl: duration(1000, 600_000).optional(),
    })
    .strict()
    .optional(),
  limits: z
    .object({
      max_connections: limit.optional(),
      max_pending_requests: limit.optional(),
      max_concurrent_requests: limit.optional(),
      max_concurrent_retries: limit.optional(),
    })
    .strict()
    .optional(),
  passive_health_check: z
    .object({
      interval: duration(100, 3_600_000).optional(),
      /** Consecutive 5xx / gateway errors / connect failures that eject an instance; 0: never. */
      max_failures: z.number().int().min(0).max(1000).optional(),
      base_ejection_time: duration(100, 3_600_000).optional(),
      max_ejection_percent: z.number().int().min(0).max(100).optional(),
    })
    .strict()
    .optional(),
};

/** The fields a service-router route's destination gains (flat, as Consul writes them). */
export const routeDestinationResilience = { ...timeoutFields, ...retryFields };
