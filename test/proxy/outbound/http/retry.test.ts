import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, type RetryCondition } from '../../../../src/proxy/outbound/http/resilience.js';
import { backoffMs, isIdempotent, retryable } from '../../../../src/proxy/outbound/http/retry.js';
import { connectFailure, reset, response } from './fixtures.js';

const on = (...c: RetryCondition[]) => ({ ...DEFAULT_RETRY, retryOn: new Set(c) });
const timeout = { kind: 'timeout' as const, error: new Error('t'), perTry: true };

describe('retry conditions', () => {
  it('by default: connect failures, resets and gateway errors (502/503/504, timeouts)', () => {
    const d = DEFAULT_RETRY;
    expect([...d.retryOn].sort()).toEqual(['connect-failure', 'gateway-error', 'reset']);
    expect(retryable(connectFailure(), d)).toBe(true);
    expect(retryable(reset(false), d)).toBe(true);
    for (const s of [502, 503, 504]) expect(retryable(response(s), d)).toBe(true);
    expect(retryable(timeout, d)).toBe(true);
    for (const s of [200, 404, 429, 500, 501]) expect(retryable(response(s), d)).toBe(false);
    expect(retryable({ kind: 'aborted' }, d)).toBe(false);
  });

  it('5xx takes every 5xx and no answer at all; listed statuses come on top', () => {
    expect(retryable(response(500), on('5xx'))).toBe(true);
    expect(retryable(reset(false), on('5xx'))).toBe(true);
    expect(retryable(timeout, on('5xx'))).toBe(true);
    expect(retryable(connectFailure(), on('5xx'))).toBe(false);
    expect(retryable(response(429), { ...on(), retryOnStatusCodes: new Set([429]) })).toBe(true);
    expect(retryable(response(503), on('connect-failure'))).toBe(false);
  });

  it('idempotent methods only (RFC 9110)', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) expect(isIdempotent(m)).toBe(true);
    for (const m of ['POST', 'PATCH', 'CONNECT', 'get']) expect(isIdempotent(m)).toBe(false);
  });

  it('backoff: full jitter under base x 2^(n-1), capped at the max', () => {
    const s = { ...DEFAULT_RETRY, baseIntervalMs: 25, maxIntervalMs: 250 };
    expect(backoffMs(1, s, () => 0)).toBe(0);
    expect(backoffMs(1, s, () => 0.999)).toBe(24);
    expect(backoffMs(2, s, () => 0.999)).toBe(49);
    expect(backoffMs(4, s, () => 0.999)).toBe(199);
    expect(backoffMs(5, s, () => 0.999)).toBe(249);
    expect(backoffMs(60, s, () => 0.999)).toBe(249);
  });
});
