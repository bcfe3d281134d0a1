/**
 * An allowed connection as a byte pipe to the app (the L4 fast path, and an http service's
 * inbound whenever no rule needs HTTP on this side: mode.ts): one connection to the app per
 * mesh connection.
 *
 * A tcp service's pipe counts as one request lasting as long as the connection, and when its
 * app cannot be reached the mesh side is closed (`app-unavailable`, counted and logged). An
 * http service's pipe counts no requests (its callers' outbound sidecars count each one) and
 * answers an unreachable app with `502 app-unavailable` through the deny responder: no byte of
 * the request reached an app, so the caller's outbound may send it to another instance.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { meshReason } from '../../errors/reasons.js';
import { roundMs, type AccessLog } from '../access-log.js';
import type { ThrottledLog } from '../log-throttle.js';
import { pipeSockets } from '../pipe.js';
import type { ProxySnapshot } from '../snapshot.js';
import type { ReasonCounter } from '../stats.js';
import type { Traffic } from '../traffic.js';

export interface PipeDeps {
  readonly traffic: Traffic;
  readonly errors: ReasonCounter;
  readonly log: ThrottledLog;
  readonly accessLog: AccessLog;
  /**
   * Set for an http service: the app could not be reached, answer the caller with `reason`
   * (HTTP) instead of closing. Requests and latency are then not counted here.
   */
  readonly unavailable?: (socket: TLSSocket, peer: string, reason: string) => void;
}

/** Pipes the verified, allowed `socket` from `peer` to the app; returns the app side. */
export function pipeToApp(socket: TLSSocket, peer: string, snap: ProxySnapshot, deps: PipeDeps): Socket {
  const { traffic, accessLog, unavailable } = deps;
  const counted = unavailable === undefined;
  if (counted) traffic.requests += 1;
  const startedAt = performance.now();
  const { address, port } = snap.service.app;
  const me = snap.service.name;
  const app = netConnect({ host: address, port, allowHalfOpen: true });
  let piped = false;
  let failure: string | undefined;
  // Read now: a closed socket no longer knows its peer.
  const remote = accessLog.on ? `${socket.remoteAddress}:${socket.remotePort}` : undefined;
  socket.once('close', () => {
    // Once piped, the pipe decides (a clean close lets the app side flush).
    if (!piped) app.destroy();
    if (!counted) return;
    const ms = performance.now() - startedAt;
    traffic.latencyMs(ms);
    if (accessLog.on) logConnection(accessLog, peer, me, remote, app, ms, failure);
  });
  const onAppError = (err: NodeJS.ErrnoException) => {
    const reason = meshReason('app-unavailable', me);
    failure = reason;
    deps.errors.add(reason);
    deps.log.warn(
      reason,
      { reason, app: `${address}:${port}`, code: err.code },
      'inbound: cannot reach the local service',
    );
    if (unavailable !== undefined) {
      // Counted by the responder, per answer.
      if (!socket.destroyed) unavailable(socket, peer, reason);
      return;
    }
    traffic.meshError('app-unavailable');
    socket.destroy();
  };
  app.once('error', onAppError);
  app.once('connect', () => {
    app.off('error', onAppError);
    piped = true;
    pipeSockets(socket, app);
  });
  return app;
}

/** One line per tcp connection: bytes as the app saw them (the mesh side is TLS). */
export function logConnection(
  accessLog: AccessLog,
  peer: string,
  me: string,
  remote: string | undefined,
  app: Socket | undefined,
  ms: number,
  reason: string | undefined,
): void {
  accessLog.write({
    direction: 'inbound',
    protocol: 'tcp',
    source: peer,
    destination: me,
    durationMs: roundMs(ms),
    bytesIn: app?.bytesWritten ?? 0,
    bytesOut: app?.bytesRead ?? 0,
    peer: remote,
    reason,
  });
}
