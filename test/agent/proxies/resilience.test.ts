import { describe, expect, it } from 'vitest';
import { configEntrySchema, type ServiceDefaults, type ServiceRouter } from '../../../src/api/config-entries.js';
import { durationMs } from '../../../src/api/config-resilience.js';
import { compileResilience, compileRouteResilience } from '../../../src/agent/proxies/resilience.js';
import { resolveResilience } from '../../../src/proxy/outbound/http/resilience.js';
import { snapshotResilienceSchema } from '../../../src/proxy/snapshot.js';
import * as v from 'valibot';

function parse<T>(doc: unknown): T {
  return configEntrySchema.parse(doc) as T;
}

describe('resilience fields of config entries', () => {
  it('service-defaults: every field, compiled to the snapshot in milliseconds', () => {
    const d = parse<ServiceDefaults>({
      kind: 'service-defaults',
      name: 'api',
      connect_timeout: '2s',
      request_timeout: '1m30s',
      per_try_timeout: '250ms',
      idle_timeout: '45s',
      retry: {
        num_retries: 2,
        retry_on: ['5xx'],
        retry_on_status_codes: [429],
        retry_non_idempotent: true,
        base_interval: '10ms',
        max_interval: '1s',
      },
      retry_budget: { percent: 30, min_retries_per_second: 5, ttl: '20s' },
      limits: { max_connections: 10, max_pending_requests: 20, max_concurrent_requests: 30, max_concurrent_retries: 4 },
      passive_health_check: { interval: '5s', max_failures: 3, base_ejection_time: '10s', max_ejection_percent: 50 },
    });
    const snap = compileResilience(d)!;
    expect(snap).toEqual({
      connectTimeoutMs: 2000,
      requestTimeoutMs: 90_000,
      perTryTimeoutMs: 250,
      idleTimeoutMs: 45_000,
      retry: {
        numRetries: 2,
        retryOn: ['5xx'],
        retryOnStatusCodes: [429],
        retryNonIdempotent: true,
        baseIntervalMs: 10,
        maxIntervalMs: 1000,
      },
      retryBudget: { percent: 30, minRetriesPerSecond: 5, ttlMs: 20_000 },
      limits: { maxConnections: 10, maxPendingRequests: 20, maxConcurrentRequests: 30, maxConcurrentRetries: 4 },
      outlier: { intervalMs: 5000, consecutiveErrors: 3, baseEjectionTimeMs: 10_000, maxEjectionPercent: 50 },
    });
    // The proxy takes it as it is.
    expect(v.parse(snapshotResilienceSchema, snap)).toEqual(snap);
  });

  it('only what is set is carried; the proxy fills in the defaults', () => {
    const d = parse<ServiceDefaults>({ kind: 'service-defaults', name: 'api', protocol: 'http' });
    expect(compileResilience(d)).toBeUndefined();
    const some = compileResilience(
      parse<ServiceDefaults>({
        kind: 'service-defaults',
        name: 'api',
        request_timeout: '0s',
        limits: { max_concurrent_requests: 5 },
      }),
    );
    expect(some).toEqual({ requestTimeoutMs: 0, limits: { maxConcurrentRequests: 5 } });
    const r = resolveResilience(some);
    expect(r.requestTimeoutMs).toBe(0);
    expect(r.limits).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxConcurrentRequests: 5,
      maxConcurrentRetries: 3,
    });
    expect(r.retry.numRetries).toBe(1);
    expect(r.connectTimeoutMs).toBe(5000);
  });

  it("a router route's destination: its own timeouts and retries", () => {
    const rt = parse<ServiceRouter>({
      kind: 'service-router',
      name: 'api',
      routes: [
        {
          match: { http: { methods: ['POST'] } },
          destination: { request_timeout: '5s', num_retries: 3, retry_on: ['reset'], retry_non_idempotent: true },
        },
        { destination: { service_subset: 'v1' } },
      ],
    });
    expect(compileRouteResilience(rt.routes[0]!.destination)).toEqual({
      requestTimeoutMs: 5000,
      retry: { numRetries: 3, retryOn: ['reset'], retryNonIdempotent: true },
    });
    expect(compileRouteResilience(rt.routes[1]!.destination)).toBeUndefined();
  });

  it('bad values are refused with what is wrong', () => {
    const bad = (extra: Record<string, unknown>) =>
      configEntrySchema.safeParse({ kind: 'service-defaults', name: 'api', ...extra });
    const msg = (extra: Record<string, unknown>) => {
      const r = bad(extra);
      return r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(msg({ request_timeout: '15' })).toMatch(/request_timeout: must be a duration like 250ms, 15s or 1m/);
    expect(msg({ connect_timeout: '0s' })).toMatch(/connect_timeout: must be a duration/);
    expect(msg({ request_timeout: '2h' })).toMatch(/request_timeout: must be a duration/);
    expect(msg({ retry: { num_retries: 11 } })).toMatch(/retry.num_retries/);
    expect(msg({ retry: { retry_on: ['sometimes'] } })).toMatch(/retry.retry_on.0/);
    expect(msg({ retry: { numRetries: 1 } })).toMatch(/numRetries|Unrecognized/i);
    expect(msg({ limits: { max_concurrent_requests: 0 } })).toMatch(/limits.max_concurrent_requests/);
    expect(msg({ passive_health_check: { max_ejection_percent: 101 } })).toMatch(/max_ejection_percent/);
  });

  it('durations: units and combinations, nothing else', () => {
    expect(durationMs('250ms')).toBe(250);
    expect(durationMs('1m30s')).toBe(90_000);
    expect(durationMs('1.5s')).toBe(1500);
    expect(durationMs('0s')).toBe(0);
    for (const bad of ['', '15', 's', '1 s', '-1s', '1d']) expect(durationMs(bad)).toBeUndefined();
  });
});
