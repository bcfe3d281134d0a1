/**
 * An allowed connection as a byte pipe to the app (the L4 fast path): one connection to the
 * app per mesh connection, counted as one request lasting as long as the connection. When the
 * app cannot be reached the mesh side is closed (`app-unavailable`, counted and logged).
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
}

/** Pipes the verified, allowed `socket` from `peer` to the app; returns the app side. */
export function pipeToApp(socket: TLSSocket, peer: string, snap: ProxySnapshot, deps: PipeDeps): Socket {
  const { traffic, accessLog } = deps;
  traffic.requests += 1;
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
    const ms = performance.now() - startedAt;
    traffic.latencyMs(ms);
    if (accessLog.on) logConnection(accessLog, peer, me, remote, app, ms, failure);
  });
  const onAppError = (err: NodeJS.ErrnoException) => {
    const reason = meshReason('app-unavailable', me);
    failure = reason;
    deps.errors.add(reason);
    traffic.meshError('app-unavailable');
    deps.log.warn(
      reason,
      { reason, app: `${address}:${port}`, code: err.code },
      'inbound: cannot reach the local service',
    );
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
