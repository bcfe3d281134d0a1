/**
 * The outbound L7 pipeline for one request:
 *
 *   route → split → loop { balance: an endpoint not tried yet; send (client); record; fail over? }
 *
 * It decides, and only decides: it takes the stages' inputs and returns what to answer. The
 * forwarder writes the answer; the client is injected (`send`), so the loop is tested alone with
 * made-up outcomes. Failover — nothing reached an app: a connect failure, the peer's
 * `app-unavailable`, a stale reused connection — is free, for any method, each endpoint at most
 * once, and only while the request body can be sent again. Retries (a policy, budgeted,
 * idempotent methods only: issue 15) will be a separate branch of the loop.
 *
 * Timeouts: the exchange's request timeout is the caller's (the forwarder aborts the signal
 * with `request-timeout`, which ends the attempt in flight and makes this answer 504); the
 * per-try timeout is armed here around each attempt, until its response head.
 */
import type { Readable } from 'node:stream';
import type { ReasonKind } from '../../../errors/reasons.js';
import type { Random } from '../balancers.js';
import type { Endpoint } from '../endpoint.js';
import { Attempt, type AttemptCause } from './attempt.js';
import { balance } from './balance.js';
import type { AttemptSignal, OutboundRequest } from './client.js';
import { failoverSafe, type Outcome, type ResponseOutcome } from './outcome.js';
import type { ReplayBody } from './replay-body.js';
import { formatTimeout, type TimeoutSettings } from './resilience.js';
import { route, type RouteTable } from './route.js';
import { split, type SplitTarget } from './split.js';

export interface PipelineInput {
  readonly request: OutboundRequest;
  /** The request body, or undefined for a request without one. */
  readonly body: ReplayBody | undefined;
  readonly routes: RouteTable;
  readonly signal: AttemptSignal;
  readonly timeouts: TimeoutSettings;
}

export type PipelineResult =
  /** The endpoint's answer (the service's, or its peer proxy's), to relay. */
  | {
      readonly kind: 'relay';
      readonly response: ResponseOutcome;
      readonly attempt: Attempt;
      readonly target: SplitTarget;
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
    }
  /** The app went away: nothing to answer. */
  | { readonly kind: 'gone'; readonly attempt: Attempt | undefined };

export interface PipelineDeps {
  send(endpoint: Endpoint, request: OutboundRequest, body: Readable | null, signal: AttemptSignal): Promise<Outcome>;
  readonly random: Random;
  now(): number;
  /** An attempt begins (the endpoint's figures count it). */
  started(attempt: Attempt): void;
  /** An attempt that will not be relayed is over (failed over, or the mesh answers for it). */
  abandoned(attempt: Attempt): void;
  /** Calls `f` after `ms` unless the returned function is called first. */
  timer(ms: number, f: () => void): () => void;
}

function noTimer(): void {}

export async function runPipeline(input: PipelineInput, deps: PipelineDeps): Promise<PipelineResult> {
  const r = route(input.routes, input.request);
  const target = r === undefined ? undefined : split(r.splits, deps.random);
  if (target === undefined) return { kind: 'answer', reason: 'no-healthy-endpoints', service: '', attempt: undefined };
  const service = target.cluster.service;
  const tried: Endpoint[] = [];
  let endpoint = balance({ cluster: target.cluster, policy: target.policy, tried: undefined });
  if (endpoint === undefined) return { kind: 'answer', reason: 'no-healthy-endpoints', service, attempt: undefined };
  let cause: AttemptCause = 'first';
  let staleSent = false;
  for (let n = 1; ; n++) {
    const body = input.body === undefined ? null : input.body.attempt();
    const attempt = new Attempt(endpoint, n, cause, deps.now());
    deps.started(attempt);
    const perTry = input.timeouts.perTryTimeoutMs;
    const cancel = perTry > 0 ? deps.timer(perTry, () => input.signal.abortAttempt('per-try-timeout')) : noTimer;
    let o = await deps.send(endpoint, input.request, body, input.signal);
    cancel();
    if (input.signal.aborted) {
      if (o.kind === 'response') o.body.discard();
      if (input.signal.cause !== 'request-timeout') {
        attempt.outcome = o;
        return { kind: 'gone', attempt };
      }
      // The request timeout ended this attempt: it timed out, on its endpoint's figures too.
      o = { kind: 'timeout', error: new Error('request timeout'), perTry: false };
      attempt.outcome = o;
      deps.abandoned(attempt);
      return timedOut(service, formatTimeout(input.timeouts.requestTimeoutMs), attempt);
    }
    attempt.outcome = o;
    if (o.kind === 'aborted') return { kind: 'gone', attempt };
    let next: Endpoint | undefined;
    if (failoverSafe(o) && (input.body === undefined || input.body.replayable)) {
      if (o.kind === 'reset') {
        // A stale pooled connection: the request never arrived, so it goes again (once), on the
        // balancer's next pick; this endpoint is not marked as tried.
        if (!staleSent) {
          staleSent = true;
          cause = 'stale';
          next = balance({ cluster: target.cluster, policy: target.policy, tried });
        }
      } else {
        tried.push(endpoint);
        cause = 'failover';
        next = balance({ cluster: target.cluster, policy: target.policy, tried });
      }
    }
    if (next !== undefined) {
      if (o.kind === 'response') o.body.discard();
      deps.abandoned(attempt);
      endpoint = next;
      continue;
    }
    if (o.kind === 'response') return { kind: 'relay', response: o, attempt, target };
    deps.abandoned(attempt);
    if (o.kind === 'timeout')
      return timedOut(service, o.perTry ? `per-try ${formatTimeout(perTry)}` : undefined, attempt);
    return {
      kind: 'answer',
      reason: o.kind === 'connect-failure' ? 'connect-failure' : 'upstream-reset',
      service,
      attempt,
    };
  }
}

function timedOut(service: string, after: string | undefined, attempt: Attempt): PipelineResult {
  return {
    kind: 'answer',
    reason: 'request-timeout',
    service,
    ...(after === undefined ? {} : { detail: `${service} ${after}` }),
    attempt,
  };
}
