import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../../src/proxy/outbound/endpoint.js';
import type { Attempt } from '../../../../src/proxy/outbound/http/attempt.js';
import { AttemptSignal } from '../../../../src/proxy/outbound/http/client.js';
import type { Outcome } from '../../../../src/proxy/outbound/http/outcome.js';
import { runPipeline, type PipelineDeps } from '../../../../src/proxy/outbound/http/pipeline.js';
import type { ReplayBody } from '../../../../src/proxy/outbound/http/replay-body.js';
import { DEFAULT_TIMEOUTS, type TimeoutSettings } from '../../../../src/proxy/outbound/http/resilience.js';
import { defaultRoutes } from '../../../../src/proxy/outbound/http/route.js';
import { cluster, connectFailure, reset, response } from './fixtures.js';

const request = { method: 'POST', path: '/x', headers: {} };

/**
 * An attempt that never answers by itself: it ends only when the signal aborts it, as the client
 * stage does (a per-try abort is a timeout, any other abort `aborted`).
 */
const HANG = 'hang' as const;

/** The client stage, scripted: each endpoint answers with its list of outcomes in turn. */
function harness(script: Record<string, Array<Outcome | typeof HANG>>) {
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
    random: () => 0,
    now: () => 0,
    started: (a) => started.push(a),
    abandoned: (a) => abandoned.push(a),
    timer: (ms, f) => {
      const t = { ms, f, cancelled: false };
      timers.push(t);
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

function input(ids: string[], body?: ReplayBody, timeouts: TimeoutSettings = DEFAULT_TIMEOUTS) {
  const c = cluster(
    'api',
    ids.map((id) => ({ id })),
  );
  return { request, body, routes: defaultRoutes(c, 'round_robin'), signal: new AttemptSignal(), timeouts };
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
    const inp = input(['a', 'b'], undefined, { requestTimeoutMs: 15_000, perTryTimeoutMs: 0 });
    const h = harness({ a: [HANG], b: [response(200)] });
    const running = runPipeline(inp, h.deps);
    await new Promise((r) => setImmediate(r));
    // The forwarder owns the exchange's deadline: it aborts the signal with this cause.
    inp.signal.abort('request-timeout');
    const r = await running;
    expect(r).toMatchObject({ kind: 'answer', reason: 'request-timeout', service: 'api', detail: 'api 15s' });
    expect(h.sent).toEqual(['a']);
    expect(h.abandoned.map((a) => [a.endpoint.id, a.outcome?.kind])).toEqual([['a', 'timeout']]);
    // No per-try timer without a per-try timeout.
    expect(h.timers).toEqual([]);
  });

  it('a per-try timeout ends one attempt as a timeout; with no retry that is the answer', async () => {
    const inp = input(['a', 'b'], undefined, { requestTimeoutMs: 15_000, perTryTimeoutMs: 250 });
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
