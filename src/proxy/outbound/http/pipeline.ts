/**
 * The outbound L7 pipeline for one request:
 *
 *   route → split → loop { balance: an endpoint not tried yet; send (client); record;
 *                          fail over? else retry? }
 *
 * It decides, and only decides: it takes the stages' inputs and returns what to answer. The
 * forwarder writes the answer; the client is injected (`send`), so the loop is tested alone with
 * made-up outcomes and a fake clock.
 *
 * Failover — nothing reached an app: a connect failure, the peer's `app-unavailable`, a stale
 * reused connection — is free, for any method, each endpoint at most once, and only while the
 * request body can be sent again.
 *
 * Retry is the other branch, a policy (./retry.ts): the outcome meets a condition of the route's
 * settings, the method is idempotent (unless the route says otherwise), the body can be sent
 * again, attempts are left (2 in all by default), and the upstream's retry budget (./budget.ts)
 * has one. Then, after a jittered backoff, the request goes to an endpoint not tried yet when
 * there is one, else to any. A retry the budget refuses leaves the failed answer as it is, marked
 * `retryDenied: 'budget'`.
 *
 * Timeouts: the request timeout covers the whole exchange (armed here on the signal, once the
 * route is known; when it passes the attempt in flight or the backoff ends and this answers
 * 504); the per-try timeout is armed around each attempt, until its response head.
 */
import type { Readable } from 'node:stream';
import type { ReasonKind } from '../../../errors/reasons.js';
import type { Random } from '../balancers.js';
import type { Cluster } from '../cluster.js';
import type { CircuitBreaker, CircuitLimit } from './breaker.js';
import type { Endpoint } from '../endpoint.js';
import { Attempt, type AttemptCause } from './attempt.js';
import { balance } from './balance.js';
import type { AttemptSignal, OutboundRequest } from './client.js';
import { failoverSafe, type Outcome, type ResponseOutcome } from './outcome.js';
import type { ReplayBody } from './replay-body.js';
import { formatTimeout, routeSettings, type RouteSettings } from './resilience.js';
import { verdictOf } from './outlier.js';
import { backoffMs, isIdempotent, retryable } from './retry.js';
import { pickTarget, route, type Route, type RouteRequest, type RouteTable } from './route.js';
import type { SplitTarget } from './split.js';

/** Why a retry the conditions allowed was not made: the budget was spent, or max_concurrent_retries reached. */
export type RetryDenied = 'budget' | 'overflow';

export interface PipelineInput {
  /** The app's request (`source`: its address, for hash policies). */
  readonly request: RouteRequest;
  /** The request body, or undefined for a request without one. */
  readonly body: ReplayBody | undefined;
  readonly routes: RouteTable;
  readonly signal: AttemptSignal;
  /**
   * The upstream's timeouts and retries when not its cluster's (a route's own come on top, merged
   * per request then). Without it, the target's settings merged at push time are used.
   */
  readonly settings?: RouteSettings;
}

export type PipelineResult =
  /** The endpoint's answer (the service's, or its peer proxy's), to relay. */
  | {
      readonly kind: 'relay';
      readonly response: ResponseOutcome;
      readonly attempt: Attempt;
      readonly route: Route;
      readonly target: SplitTarget;
      readonly retryDenied?: RetryDenied;
    }
  /**
   * The mesh answers itself, with this reason. `attempt`: the last one made, if any. `detail`:
   * the reason's detail when it says more than the service (`api 15s`).
   */
  | {
      readonly kind: 'answer';
      readonly reason: ReasonKind;
      readonly service: string;
      readonly detail?: string;
      readonly attempt: Attempt | undefined;
      readonly retryDenied?: RetryDenied;
      /** The split's pick, if it got that far (its per-subset figures count the answer). */
      readonly target?: SplitTarget | undefined;
    }
  /** The app went away: nothing to answer. */
  | { readonly kind: 'gone'; readonly attempt: Attempt | undefined };

export interface PipelineDeps {
  /** `cluster`: the endpoint's (a policy target's, whose TLS identity check names its service). */
  send(
    endpoint: Endpoint,
    request: OutboundRequest,
    body: Readable | null,
    signal: AttemptSignal,
    cluster: Cluster,
  ): Promise<Outcome>;
  readonly random: Random;
  now(): number;
  /** An attempt begins (the endpoint's figures count it). */
  started(attempt: Attempt): void;
  /** An attempt that will not be relayed is over (failed over, or the mesh answers for it). */
  abandoned(attempt: Attempt): void;
  /** Calls `f` after `ms` unless the returned function is called first. */
  timer(ms: number, f: () => void): () => void;
  /** Outlier ejection has just left `endpoint` out. */
  ejected?(endpoint: Endpoint, cluster: Cluster): void;
}

function noTimer(): void {}

export async function runPipeline(input: PipelineInput, deps: PipelineDeps): Promise<PipelineResult> {
  const r = route(input.routes, input.request);
  if (r === undefined) return { kind: 'answer', reason: 'no-healthy-endpoints', service: '', attempt: undefined };
  const target = pickTarget(r, input.request, deps.random);
  if (target === undefined) return { kind: 'answer', reason: 'no-healthy-endpoints', service: '', attempt: undefined };
  const { cluster, balancer } = target;
  // Under a traffic policy the target (`api/v2`) names what answered; without one, the service.
  const service = target.name ?? cluster.service;
  const request = sendable(input.request, r, target);
  const hash = target.hash === undefined ? undefined : target.hash(input.request);
  // Merged at push time (the target's `settings`); only a caller's own base merges here.
  const settings =
    input.settings === undefined
      ? (target.settings ?? cluster.resilience)
      : routeSettings(input.settings, r.resilience);
  const signal = input.signal;
  if (settings.requestTimeoutMs > 0)
    signal.setDeadline(deps.timer(settings.requestTimeoutMs, () => signal.abort('request-timeout')));
  const requestTimedOut = (attempt: Attempt | undefined): PipelineResult =>
    timedOut(service, formatTimeout(settings.requestTimeoutMs), attempt, target);
  const tried: Endpoint[] = [];
  let endpoint = balance({ cluster, balancer, tried: undefined, hash, now: deps.now() });
  if (endpoint === undefined) {
    // `no-healthy-endpoints api/v2 (route 2 of service-router api)`: the subset and the route that led there.
    const detail = target.name === undefined ? {} : { detail: `${service} (${r.name})` };
    return { kind: 'answer', reason: 'no-healthy-endpoints', service, ...detail, attempt: undefined, target };
  }
  cluster.budget.request(deps.now());
  const retry = settings.retry;
  const mayRetry = retry.numRetries > 0 && (retry.retryNonIdempotent || isIdempotent(input.request.method));
  let retries = 0;
  /** The concurrent-retry slot taken for the next attempt (a retry). */
  let retrySlot: CircuitBreaker | undefined;
  let cause: AttemptCause = 'first';
  let staleSent = false;
  for (let n = 1; ; n++) {
    if (!cluster.breaker.tryPending(endpoint.inFlight, cluster.connectionsPerEndpoint)) {
      // As many attempts wait for a connection to this endpoint as the upstream allows: no queueing.
      signal.clearDeadline();
      if (retrySlot !== undefined) retrySlot.endRetry();
      return circuitOpen(service, cluster, 'max-pending', undefined);
    }
    const body = input.body === undefined ? null : input.body.attempt();
    const attempt = new Attempt(endpoint, n, cause, deps.now());
    if (cause === 'retry') attempt.retrySlot = retrySlot;
    retrySlot = undefined;
    deps.started(attempt);
    const perTry = settings.perTryTimeoutMs;
    const cancel = perTry > 0 ? deps.timer(perTry, () => signal.abortAttempt('per-try-timeout')) : noTimer;
    let o = await deps.send(endpoint, request, body, signal, cluster);
    cancel();
    if (signal.aborted) {
      if (o.kind === 'response') o.body.discard();
      if (signal.cause !== 'request-timeout') {
        attempt.outcome = o;
        return { kind: 'gone', attempt };
      }
      // The request timeout ended this attempt: it timed out, on its endpoint's figures too.
      o = { kind: 'timeout', error: new Error('request timeout'), perTry: false };
      attempt.outcome = o;
      judge(cluster, endpoint, o, deps);
      deps.abandoned(attempt);
      return requestTimedOut(attempt);
    }
    attempt.outcome = o;
    if (o.kind === 'aborted') return { kind: 'gone', attempt };
    if (!(o.kind === 'reset' && o.stale)) judge(cluster, endpoint, o, deps);
    const replayable = input.body === undefined || input.body.replayable;
    let next: Endpoint | undefined;
    if (failoverSafe(o) && replayable) {
      if (o.kind === 'reset') {
        // A stale pooled connection: the request never arrived, so it goes again (once), on the
        // balancer's next pick; this endpoint is not marked as tried.
        if (!staleSent) {
          staleSent = true;
          cause = 'stale';
          next = balance({ cluster, balancer, tried, hash, now: deps.now() });
        }
      } else {
        tried.push(endpoint);
        cause = 'failover';
        next = balance({ cluster, balancer, tried, hash, now: deps.now() });
      }
    }
    let denied: RetryDenied | undefined;
    if (next === undefined && mayRetry && retries < retry.numRetries && replayable && retryable(o, retry)) {
      if (!tried.includes(endpoint)) tried.push(endpoint);
      const again = retryEndpoint(cluster, target, tried, hash, deps.now());
      const slot = again !== undefined && cluster.breaker.tryRetry();
      if (!slot) denied = 'overflow';
      else if (!cluster.budget.withdraw(deps.now())) {
        cluster.breaker.endRetry();
        denied = 'budget';
      } else {
        retrySlot = cluster.breaker;
        retries += 1;
        cause = 'retry';
        if (o.kind === 'response') o.body.discard();
        deps.abandoned(attempt);
        const woken = await backoff(backoffMs(retries, retry, deps.random), signal, deps);
        if (woken !== 'done') {
          // No retry made after all: its slot goes back.
          cluster.breaker.endRetry();
          return woken === 'request-timeout' ? requestTimedOut(attempt) : { kind: 'gone', attempt: undefined };
        }
        endpoint = again!;
        continue;
      }
      if (again === undefined) denied = undefined;
    }
    if (next !== undefined) {
      if (o.kind === 'response') o.body.discard();
      deps.abandoned(attempt);
      endpoint = next;
      continue;
    }
    const extra = denied === undefined ? {} : { retryDenied: denied };
    if (o.kind === 'response') return { kind: 'relay', response: o, attempt, route: r, target, ...extra };
    deps.abandoned(attempt);
    if (o.kind === 'timeout')
      return {
        ...timedOut(service, o.perTry ? `per-try ${formatTimeout(perTry)}` : undefined, attempt, target),
        ...extra,
      };
    return {
      kind: 'answer',
      reason: o.kind === 'connect-failure' ? 'connect-failure' : 'upstream-reset',
      service,
      attempt,
      target,
      ...extra,
    };
  }
}

/** Outlier ejection learns how the attempt went; an ejection is told to the caller (it logs). */
function judge(cluster: Cluster, endpoint: Endpoint, o: Outcome, deps: PipelineDeps): void {
  const v = verdictOf(o);
  if (v !== undefined && cluster.outlier.record(endpoint, v, deps.now())) deps.ejected?.(endpoint, cluster);
}

/** A retry goes to an endpoint this request has not tried when there is one, else to any. */
function retryEndpoint(
  cluster: Cluster,
  target: SplitTarget,
  tried: readonly Endpoint[],
  hash: number | undefined,
  now: number,
): Endpoint | undefined {
  const balancer = target.balancer;
  return (
    balance({ cluster, balancer, tried, hash, now }) ?? balance({ cluster, balancer, tried: undefined, hash, now })
  );
}

/** Waits `ms` before a retry; the exchange's end (app gone, request timeout) cuts it short. */
function backoff(ms: number, signal: AttemptSignal, deps: PipelineDeps): Promise<'done' | 'gone' | 'request-timeout'> {
  return new Promise((resolve) => {
    const cancel = deps.timer(ms, () => {
      signal.watch(undefined);
      resolve('done');
    });
    signal.watch((cause) => {
      cancel();
      resolve(cause === 'request-timeout' ? 'request-timeout' : 'gone');
    });
  });
}

function circuitOpen(
  service: string,
  cluster: Cluster,
  limit: CircuitLimit,
  attempt: Attempt | undefined,
): PipelineResult {
  return {
    kind: 'answer',
    reason: 'circuit-open',
    service,
    detail: `${service} ${cluster.breaker.detail(limit)}`,
    attempt,
  };
}

function timedOut(
  service: string,
  after: string | undefined,
  attempt: Attempt | undefined,
  target: SplitTarget,
): PipelineResult {
  return {
    kind: 'answer',
    reason: 'request-timeout',
    service,
    ...(after === undefined ? {} : { detail: `${service} ${after}` }),
    attempt,
    target,
  };
}

/**
 * The request as it goes to the target: the route's prefix rewrite, then the route's and the
 * target's request header changes. Without any, the app's request object itself (no copy).
 * The headers are this exchange's own (the forwarder already edits them), so they are edited
 * in place, once, before the first attempt.
 */
function sendable(req: RouteRequest, r: Route, t: SplitTarget): OutboundRequest {
  if (r.rewrite === undefined && r.requestHeaders === undefined && t.requestHeaders === undefined) return req;
  r.requestHeaders?.(req.headers);
  t.requestHeaders?.(req.headers);
  return { method: req.method, path: r.rewrite === undefined ? req.path : r.rewrite(req.path), headers: req.headers };
}
