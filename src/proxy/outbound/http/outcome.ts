/**
 * How one attempt ended, as one typed value: the pipeline decides on it (relay, fail over,
 * answer for the mesh) without knowing the HTTP client library, and tests build outcomes by
 * hand. Only `client.ts` turns the library's events and errors into these.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { peerReasonKind, REASON_HEADER, REASONS, type MeshErrorKind } from '../../../errors/reasons.js';
import { isProvenOn, PROOF_HEADER } from '../../http/mesh-proof.js';
import type { ConnectFailure } from '../dial.js';

/** The body of a response that has begun: relayed to the app, or read and dropped. */
export interface ResponseBody {
  /**
   * Streams the body into `res` (headers already written), with backpressure. `done` is called
   * once: with `undefined` when the body was complete, or the error that cut it (the caller
   * then destroys `res`, so the app sees the response cut too, never a truncated one as whole).
   */
  relay(res: ServerResponse, done: (err: Error | undefined) => void): void;
  /** Reads the rest and drops it, so the connection can go back to its pool. */
  discard(): void;
}

export interface ResponseOutcome {
  readonly kind: 'response';
  readonly status: number;
  readonly statusMessage: string | undefined;
  /** Lower-case names; repeated headers (set-cookie) as arrays. */
  readonly headers: IncomingHttpHeaders;
  readonly body: ResponseBody;
  /** The peer proxy's reason when the peer (not the service) answered: its metrics key. */
  readonly peerReason: string | undefined;
  readonly peerKind: MeshErrorKind | undefined;
}

/** No connection could be made: no byte of the request left this proxy. */
export interface ConnectFailureOutcome {
  readonly kind: 'connect-failure';
  readonly error: ConnectFailure;
}

/**
 * The connection dropped before the response began. `stale`: it was a pooled connection that
 * had served requests before and the far side closed it as we reused it — the request never
 * arrived, so sending it again is failover, not a retry.
 */
export interface ResetOutcome {
  readonly kind: 'reset';
  readonly stale: boolean;
  readonly code: string | undefined;
  readonly error: Error;
}

/**
 * No response head in time: this attempt's per-try timeout passed (`perTry`), or the client's
 * own bound on waiting for one. The request may have reached the app, so it is no failover.
 */
export interface TimeoutOutcome {
  readonly kind: 'timeout';
  readonly error: Error;
  readonly perTry: boolean;
}

/** This side gave up on the attempt (the app went away): nothing to answer. */
export interface AbortedOutcome {
  readonly kind: 'aborted';
}

export type Outcome = ResponseOutcome | ConnectFailureOutcome | ResetOutcome | TimeoutOutcome | AbortedOutcome;

/**
 * The peer proxy's `x-meshctl-reason` on a response that came over `socket`, when the peer made
 * the answer itself: its `x-meshctl-proof` matches this connection's (../../http/mesh-proof.ts).
 * A reason without that proof is the service's own header (a piped inbound does not rewrite
 * the app's responses): it is removed, so it can neither cause a failover nor reach our app as
 * the mesh's word. The proof itself never goes on to the app.
 */
export function peerReasonOf(
  headers: IncomingHttpHeaders,
  socket: Socket | undefined,
): { reason: string; kind: MeshErrorKind } | undefined {
  const reason = headers[REASON_HEADER];
  const proof = headers[PROOF_HEADER];
  if (proof !== undefined) delete headers[PROOF_HEADER];
  if (reason === undefined) return undefined;
  if (typeof reason !== 'string' || !isProvenOn(proof, socket)) {
    delete headers[REASON_HEADER];
    return undefined;
  }
  return { reason, kind: peerReasonKind(reason) };
}

/**
 * Failover is free and safe for any method: nothing reached an app. That is a connect
 * failure, a stale reused connection, or a peer's answer whose reason says so
 * (`app-unavailable`: the peer could not reach its app). Never a timeout or a mid-way reset.
 */
export function failoverSafe(o: Outcome): boolean {
  switch (o.kind) {
    case 'connect-failure':
      return true;
    case 'reset':
      return o.stale;
    case 'response':
      return (
        o.peerKind !== undefined &&
        o.peerKind !== 'other' &&
        o.status === REASONS[o.peerKind].status &&
        REASONS[o.peerKind].failover
      );
    default:
      return false;
  }
}
