import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../../src/proxy/outbound/endpoint.js';
import type { Attempt } from '../../../../src/proxy/outbound/http/attempt.js';
import { AttemptSignal } from '../../../../src/proxy/outbound/http/client.js';
import type { Outcome } from '../../../../src/proxy/outbound/http/outcome.js';
import { runPipeline, type PipelineDeps } from '../../../../src/proxy/outbound/http/pipeline.js';
import type { ReplayBody } from '../../../../src/proxy/outbound/http/replay-body.js';
import { RetryBudget } from '../../../../src/proxy/outbound/http/budget.js';
import {
  DEFAULT_RESILIENCE,
  DEFAULT_RETRY,
  type RetrySettings,
  type RouteSettings,
} from '../../../../src/proxy/outbound/http/resilience.js';
import { defaultRoutes } from '../../../../src/proxy/outbound/http/route.js';
import { cluster, connectFailure, reset, response } from './fixtures.js';

const request = { method: 'POST', path: '/x', headers: {} };

/**
 * An attempt that never answers by itself: it ends only when the signal aborts it, as the client
 * stage does (a per-try abort is a timeout, any other abort `aborted`).
 */
const HANG = 'hang' as const;

/** The client stage, scripted: each endpoint answers with its list of outcomes in turn. */
function harness(
  script: Record<string, Array<Outcome | typeof HANG>>,
  opts: { auto?: boolean; random?: () => number } = {},
) {
  const sent: string[] = [];
  const started: Attempt[] = [];
  const abandoned: Attempt[] = [];
  /** Armed timers (a fake clock: `fire` runs them). */
  const timers: Array<{ ms: number; f: () => void; cancelled: boolean }> = [];
  const deps: PipelineDeps = {
    send: (ep: Endpoint, _req, _body, signal) => {
      sent.push(ep.id);
      const next = script[ep.id]!.shift();
      if (next === undefined) throw new Error(`no outcome left for ${ep.id}`);
      if (next !== HANG) return Promise.resolve(next);
      return new Promise<Outcome>((resolve) =>
        signal.watch((cause) =>
          resolve(
            cause === 'per-try-timeout'
              ? { kind: 'timeout', error: new Error('t'), perTry: true }
              : { kind: 'aborted' },
          ),
        ),
      );
    },
    random: opts.random ?? (() => 0),
    now: () => 0,
    started: (a) => started.push(a),
    abandoned: (a) => abandoned.push(a),
    timer: (ms, f) => {
      const t = { ms, f, cancelled: false };
      timers.push(t);
      // auto: every timer passes at once (backoffs, per-try timeouts), after what armed it.
      if (opts.auto) queueMicrotask(() => !t.cancelled && f());
      return () => (t.cancelled = true);
    },
  };
  /** Runs the armed, uncancelled timers once they are armed (after the pipeline's next await). */
  const fire = async (): Promise<void> => {
    await new Promise((r) => setImmediate(r));
    for (const t of timers.splice(0)) if (!t.cancelled) t.f();
  };
  return { deps, sent, started, abandoned, timers, fire };
}

/** No retries: the failover cases see only failover. */
const NO_RETRY: RetrySettings = { ...DEFAULT_RETRY, numRetries: 0 };

function input(
  ids: string[],
  body?: ReplayBody,
  settings: Partial<RouteSettings> = {},
  method = request.method,
  budgetAt = 0,
) {
  const c = cluster(
    'api',
    ids.map((id) => ({ id })),
  );
  // The budget on the fake clock (now = 0): made at `budgetAt`, so -10 s gives it a full window's 10/s.
  c.budget = new RetryBudget(DEFAULT_RESILIENCE.retryBudget, budgetAt);
  return {
    request: { ...request, method },
    body,
    routes: defaultRoutes(c),
    signal: new AttemptSignal(),
    settings: { requestTimeoutMs: 15_000, perTryTimeoutMs: 0, retry: NO_RETRY, ...settings },
    cluster: c,
  };
}

describe('pipeline', () => {
  it('no endpoint: the mesh answers no-healthy-endpoints without an attempt', async () => {
    const h = harness({});
    const r = await runPipeline(input([]), h.deps);
    expect(r).toMatchObject({ kind: 'answer', reason: 'no-healthy-endpoints', service: 'api', attempt: undefined });
    expect(h.sent).toEqual([]);
  });

  it('relays the first answer, whatever its status', async () => {
    const ok = response(503);
    const h = harness({ a: [ok] });
    const r = await runPipeline(input(['a', 'b']), h.deps);
    expect(r.kind).toBe('relay');
    expect(r.kind === 'relay' && r.response).toBe(ok);
    expect(h.sent).toEqual(['a']);
    expect(h.abandoned).toEqual([]);
  });

  it('fails over on connect failure and on the peer app-unavailable, each endpoint once', async () => {
    const unavailable = response(502, 'app-unavailable api');
    const h = harness({ a: [connectFailure()], b: [unavailable], c: [response(200)] });
    const r = await runPipeline(input(['a', 'b', 'c']), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(h.sent).toEqual(['a', 'b', 'c']);
    expect(h.started.map((a) => [a.endpoint.id, a.number, a.cause])).toEqual([
      ['a', 1, 'first'],
      ['b', 2, 'failover'],
      ['c', 3, 'failover'],
    ]);
    expect(h.abandoned.map((a) => a.endpoint.id)).toEqual(['a', 'b']);
    expect(unavailable.body.discarded).toBe(true);
  });

  it('every endpoint unreachable: connect-failure after trying each once', async () => {
    const h = harness({ a: [connectFailure()], b: [connectFailure()] });
    const r = await runPipeline(input(['a', 'b']), h.deps);
    expect(r).toMatchObject({ kind: 'answer', reason: 'connect-failure', service: 'api' });
    expect(h.sent).toEqual(['a', 'b']);
  });

  it("the last endpoint's app-unavailable is relayed when no endpoint is left", async () => {
    const last = response(502, 'app-unavailable api');
    const h = harness({ a: [response(502, 'app-unavailable api')], b: [last] });
    const r = await runPipeline(input(['a', 'b']), h.deps);
    expect(r.kind === 'relay' && r.response).toBe(last);
    expect(last.body.discarded).toBe(false);
  });

  it('a stale pooled connection is sent again once; a second reset is the answer', async () => {
    const h = harness({ a: [reset(true), response(200)] });
    const r = await runPipeline(input(['a']), h.deps);
    expect(r.kind).toBe('relay');
    expect(h.started.map((a) => a.cause)).toEqual(['first', 'stale']);

    const h2 = harness({ a: [reset(true), reset(true)] });
    expect(await runPipeline(input(['a']), h2.deps)).toMatchObject({ kind: 'answer', reason: 'upstream-reset' });
  });

  it('a reset after the request may have reached the app is never failed over', async () => {
    const h = harness({ a: [reset(false)], b: [response(200)] });
    expect(await runPipeline(input(['a', 'b']), h.deps)).toMatchObject({ kind: 'answer', reason: 'upstream-reset' });
    expect(h.sent).toEqual(['a']);
  });

  it('no failover once the body cannot be sent again', async () => {
    const body = { replayable: false, attempt: () => null } as unknown as ReplayBody;
    const h = harness({ a: [connectFailure()], b: [response(200)] });
    expect(await runPipeline(input(['a', 'b'], body), h.deps)).toMatchObject({
      kind: 'answer',
      reason: 'connect-failure',
    });
    expect(h.sent).toEqual(['a']);
  });

  it('the app went away: nothing to answer, and no further attempt', async () => {
    const inp = input(['a', 'b']);
    const h = harness({ a: [connectFailure()], b: [response(200)] });
    const send = h.deps.send;
    h.deps.send = (...args) => {
      inp.signal.abort();
      return send(...args);
    };
    const r = await runPipeline(inp, h.deps);
    expect(r.kind).toBe('gone');
    expect(h.sent).toEqual(['a']);
  });

  it('the request timeout ends the attempt in flight: 504 request-timeout with the time, counted on the endpoint', async () => {
    const inp = input(['a', 'b'], undefined, { requestTimeoutMs: 15_000 });
    const h = harness({ a: [HANG], b: [response(200)] });
    const running = runPipeline(inp, h.deps);
    // The request timeout is armed on the signal once the route is known.
    expect(h.timers.map((t) => t.ms)).toEqual([15_000]);
    await h.fire();
    const r = await running;
    expect(r).toMatchObject({ kind: 'answer', reason: 'request-timeout', service: 'api', detail: 'api 15s' });
    expect(h.sent).toEqual(['a']);
    expect(h.abandoned.map((a) => [a.endpoint.id, a.outcome?.kind])).toEqual([['a', 'timeout']]);
  });

  it('a per-try timeout ends one attempt as a timeout; with no retry that is the answer', async () => {
    const inp = input(['a', 'b'], undefined, { requestTimeoutMs: 0, perTryTimeoutMs: 250 });
    const h = harness({ a: [HANG], b: [response(200)] });
    const running = runPipeline(inp, h.deps);
    expect(h.timers.map((t) => t.ms)).toEqual([250]);
    await h.fire();
    const r = await running;
    expect(r).toMatchObject({ kind: 'answer', reason: 'request-timeout', detail: 'api per-try 250ms' });
    // A timeout may have reached the app: never failed over.
    expect(h.sent).toEqual(['a']);
    expect(inp.signal.aborted).toBe(false);
  });

  it("an answer before the per-try timeout cancels it; the client's own timeout is a 504 too", async () => {
    const h = harness({ a: [response(200)] });
    const r = await runPipeline(input(['a'], undefined, { requestTimeoutMs: 0, perTryTimeoutMs: 1000 }), h.deps);
    expect(r.kind).toBe('relay');
    expect(h.timers.map((t) => t.cancelled)).toEqual([true]);

    const h2 = harness({ a: [{ kind: 'timeout', error: new Error('headers'), perTry: false }] });
    expect(await runPipeline(input(['a']), h2.deps)).toMatchObject({ kind: 'answer', reason: 'request-timeout' });
  });

  it('the app going away is not a timeout: nothing to answer', async () => {
    const inp = input(['a']);
    const h = harness({ a: [HANG] });
    const running = runPipeline(inp, h.deps);
    await new Promise((r) => setImmediate(r));
    inp.signal.abort();
    expect((await running).kind).toBe('gone');
  });
});

describe('pipeline: retries', () => {
  /** Retries as by default (2 attempts, connect-failure/reset/gateway-error), no timeouts, a budget with room. */
  function retrying(
    ids: string[],
    retry: Partial<RetrySettings> = {},
    method = 'GET',
    body?: ReplayBody,
    perTryTimeoutMs = 0,
  ) {
    return input(
      ids,
      body,
      { requestTimeoutMs: 0, perTryTimeoutMs, retry: { ...DEFAULT_RETRY, ...retry } },
      method,
      -10_000,
    );
  }

  it('a GET answered 503 is retried once, on another endpoint, after a jittered backoff under 25 ms', async () => {
    const failed = response(503);
    const h = harness({ a: [failed], b: [response(200)] }, { auto: true, random: () => 0.99 });
    const r = await runPipeline(retrying(['a', 'b']), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(r.kind === 'relay' && r.attempt.number).toBe(2);
    expect(h.started.map((a) => [a.endpoint.id, a.cause])).toEqual([
      ['a', 'first'],
      ['b', 'retry'],
    ]);
    expect(failed.body.discarded).toBe(true);
    expect(h.abandoned.map((a) => a.endpoint.id)).toEqual(['a']);
    // The backoff: full jitter below the first ceiling (the base, 25 ms).
    expect(h.timers.map((t) => t.ms)).toEqual([24]);
  });

  it('2 attempts in all by default: a second 503 is relayed', async () => {
    const last = response(503);
    const h = harness({ a: [response(503)], b: [last] }, { auto: true });
    const r = await runPipeline(retrying(['a', 'b']), h.deps);
    expect(r.kind === 'relay' && r.response).toBe(last);
    expect(r.kind === 'relay' && r.retryDenied).toBeUndefined();
    expect(h.sent).toEqual(['a', 'b']);
  });

  it('more retries back off exponentially, capped, and go round the endpoints', async () => {
    const h = harness(
      { a: [response(502), response(502)], b: [response(504), response(200)] },
      { auto: true, random: () => 0.999 },
    );
    const r = await runPipeline(retrying(['a', 'b'], { numRetries: 3, maxIntervalMs: 60 }), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(h.sent).toEqual(['a', 'b', 'a', 'b']);
    expect(h.timers.map((t) => t.ms)).toEqual([24, 49, 59]);
  });

  it('with one endpoint, the retry goes to it again', async () => {
    const h = harness({ a: [response(503), response(200)] }, { auto: true });
    const r = await runPipeline(retrying(['a']), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(h.sent).toEqual(['a', 'a']);
  });

  it('a POST is not retried unless the route says so', async () => {
    const h = harness({ a: [response(503)], b: [response(200)] }, { auto: true });
    const r = await runPipeline(retrying(['a', 'b'], {}, 'POST'), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(503);
    expect(h.sent).toEqual(['a']);

    const h2 = harness({ a: [response(503)], b: [response(200)] }, { auto: true });
    const r2 = await runPipeline(retrying(['a', 'b'], { retryNonIdempotent: true }, 'POST'), h2.deps);
    expect(r2.kind === 'relay' && r2.response.status).toBe(200);
  });

  it('only the listed conditions: a 500 is no gateway error; 5xx and listed statuses are', async () => {
    const h = harness({ a: [response(500)], b: [response(200)] }, { auto: true });
    expect(await runPipeline(retrying(['a', 'b']), h.deps)).toMatchObject({ kind: 'relay' });
    expect(h.sent).toEqual(['a']);

    const h2 = harness({ a: [response(500)], b: [response(200)] }, { auto: true });
    await runPipeline(retrying(['a', 'b'], { retryOn: new Set(['5xx']) }), h2.deps);
    expect(h2.sent).toEqual(['a', 'b']);

    const h3 = harness({ a: [response(429)], b: [response(200)] }, { auto: true });
    await runPipeline(retrying(['a', 'b'], { retryOnStatusCodes: new Set([429]) }), h3.deps);
    expect(h3.sent).toEqual(['a', 'b']);

    const h4 = harness({ a: [response(404)], b: [response(200)] }, { auto: true });
    await runPipeline(retrying(['a', 'b']), h4.deps);
    expect(h4.sent).toEqual(['a']);
  });

  it('a reset after the request went out and a per-try timeout are retried for a GET', async () => {
    const h = harness({ a: [reset(false)], b: [response(200)] }, { auto: true });
    expect(await runPipeline(retrying(['a', 'b']), h.deps)).toMatchObject({ kind: 'relay' });
    expect(h.started.map((a) => a.cause)).toEqual(['first', 'retry']);

    const h2 = harness({ a: [HANG], b: [response(200)] }, { auto: true });
    const r = await runPipeline(retrying(['a', 'b'], {}, 'GET', undefined, 250), h2.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(h2.abandoned.map((a) => a.outcome?.kind)).toEqual(['timeout']);
  });

  it('failover stays free: connect failures move on without spending a retry', async () => {
    const h = harness({ a: [connectFailure()], b: [response(503)], c: [response(200)] }, { auto: true });
    const r = await runPipeline(retrying(['a', 'b', 'c']), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(h.started.map((a) => a.cause)).toEqual(['first', 'failover', 'retry']);
  });

  it('a body that no longer fits the replay buffer is not retried', async () => {
    const body = { replayable: false, attempt: () => null } as unknown as ReplayBody;
    const h = harness({ a: [response(503)], b: [response(200)] }, { auto: true });
    const r = await runPipeline(retrying(['a', 'b'], {}, 'PUT', body), h.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(503);
    expect(h.sent).toEqual(['a']);
  });

  it('the budget spent: no retry, and the failed answer says why', async () => {
    const inp = retrying(['a', 'b']);
    inp.cluster.budget = new RetryBudget({ percent: 0, minRetriesPerSecond: 0, ttlMs: 10_000 }, 0);
    const h = harness({ a: [response(503)], b: [response(200)] }, { auto: true });
    const r = await runPipeline(inp, h.deps);
    expect(r).toMatchObject({ kind: 'relay', retryDenied: 'budget' });
    expect(h.sent).toEqual(['a']);
    expect(inp.cluster.budget.exhausted).toBe(1);

    const h2 = harness({ a: [reset(false)] }, { auto: true });
    expect(await runPipeline(inp, h2.deps)).toMatchObject({
      kind: 'answer',
      reason: 'upstream-reset',
      retryDenied: 'budget',
    });
  });

  it('the request timeout passing during the backoff answers 504 at once', async () => {
    const inp = input(['a', 'b'], undefined, { requestTimeoutMs: 15_000, retry: DEFAULT_RETRY }, 'GET', -10_000);
    const h = harness({ a: [response(503)], b: [response(200)] });
    const running = runPipeline(inp, h.deps);
    await h.fire(); // the deadline (and the backoff, which it cancels first)
    const r = await running;
    expect(r).toMatchObject({ kind: 'answer', reason: 'request-timeout', detail: 'api 15s' });
    expect(h.sent).toEqual(['a']);
  });

  it('max_concurrent_retries reached: the failed answer is relayed, marked overflow; slots come back', async () => {
    const inp = retrying(['a', 'b']);
    const breaker = inp.cluster.breaker;
    breaker.limits = { ...breaker.limits, maxConcurrentRetries: 1 };
    breaker.retries = 1; // another request's retry is in flight
    const h = harness({ a: [response(503)], b: [response(200)] }, { auto: true });
    expect(await runPipeline(inp, h.deps)).toMatchObject({ kind: 'relay', retryDenied: 'overflow' });
    expect(breaker.overflows['max-retries']).toBe(1);

    breaker.retries = 0;
    const h2 = harness({ a: [response(503)], b: [response(200)] }, { auto: true });
    const r = await runPipeline(inp, h2.deps);
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    // The retry holds its slot until it ends (the forwarder ends the relayed attempt).
    expect(breaker.retries).toBe(1);
    if (r.kind === 'relay') r.attempt.end();
    expect(breaker.retries).toBe(0);
  });

  it('max_pending_requests reached on the endpoint: circuit-open at once, no attempt', async () => {
    const inp = retrying(['a']);
    const c = inp.cluster;
    c.breaker.limits = { ...c.breaker.limits, maxPendingRequests: 2, maxConnections: 1 };
    c.endpoints[0]!.inFlight = 3; // one on the connection, two waiting
    const h = harness({ a: [response(200)] });
    expect(await runPipeline(inp, h.deps)).toMatchObject({
      kind: 'answer',
      reason: 'circuit-open',
      detail: 'api max-pending 2',
    });
    expect(h.sent).toEqual([]);
  });

  it("a route's own settings override the upstream's: its POSTs are retried, its timeout armed", async () => {
    const inp = retrying(['a', 'b'], {}, 'POST');
    const base = inp.routes.routes[0]!;
    const routes = {
      routes: [{ ...base, resilience: { requestTimeoutMs: 5000, retry: { retryNonIdempotent: true } } }],
    };
    const h = harness({ a: [response(503)], b: [response(200)] }, { auto: false });
    const running = runPipeline({ ...inp, routes }, h.deps);
    // The route's 5 s request timeout is armed (the upstream's here is none).
    expect(h.timers.map((t) => t.ms)).toEqual([5000]);
    await new Promise((r) => setImmediate(r));
    // The backoff before the retry; run it (not the deadline).
    const backoffTimer = h.timers[1]!;
    backoffTimer.f();
    const r = await running;
    expect(r.kind === 'relay' && r.response.status).toBe(200);
    expect(h.sent).toEqual(['a', 'b']);
  });
});
