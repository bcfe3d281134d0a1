/**
 * L4 forwarding: one app connection ↔ one mTLS connection to an endpoint, as a byte pipe.
 * Bytes the app sends before the endpoint is reached wait in the socket's buffer (it is not
 * read until the pipe starts), so nothing is lost during failover.
 *
 * A connection counts as one request; its latency is how long it stayed open, recorded (with
 * its access log line, when on) as the app's side closes.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { roundMs } from '../access-log.js';
import type { ThrottledLog } from '../log-throttle.js';
import { pipeSockets } from '../pipe.js';
import type { ReasonCounter } from '../stats.js';
import type { Traffic } from '../traffic.js';
import type { Cluster } from './cluster.js';
import { connectEndpoint } from './connect.js';
import type { OutboundContext } from './context.js';
import type { Endpoint } from './endpoint.js';
import { ignore } from '../../util/async.js';

export function forwardTcp(
  client: Socket,
  cluster: Cluster,
  traffic: Traffic,
  errors: ReasonCounter,
  log: ThrottledLog,
  ctx: OutboundContext,
): void {
  client.on('error', ignore);
  traffic.requests += 1;
  const startedAt = performance.now();
  connectEndpoint(
    cluster,
    () => !client.destroyed,
    (r) => {
      if (!r.ok) {
        const refused = r.kind !== undefined && r.reason !== undefined;
        if (refused) {
          errors.add(r.reason);
          traffic.meshError(r.kind);
          log.warn(
            r.reason,
            { reason: r.reason, attempts: r.failures.map((f) => `${f.endpointId}: ${f.reason}`) },
            'outbound tcp connection refused',
          );
        }
        const ms = performance.now() - startedAt;
        traffic.latencyMs(ms);
        if (ctx.accessLog.on) logLine(ctx, cluster, client, undefined, ms, refused ? r.reason : undefined);
        client.destroy();
        return;
      }
      const { socket, endpoint, attemptAt } = r;
      endpoint.inFlight += 1;
      socket.once('close', () => {
        endpoint.inFlight -= 1;
      });
      client.once('close', () => {
        const now = performance.now();
        traffic.latencyMs(now - startedAt);
        endpoint.traffic.latencyMs(now - attemptAt);
        if (ctx.accessLog.on) logLine(ctx, cluster, client, endpoint, now - startedAt, undefined);
      });
      pipeSockets(client, socket);
    },
  );
}

function logLine(
  ctx: OutboundContext,
  cluster: Cluster,
  client: Socket,
  endpoint: Endpoint | undefined,
  ms: number,
  reason: string | undefined,
): void {
  ctx.accessLog.write({
    direction: 'outbound',
    protocol: 'tcp',
    source: ctx.source,
    destination: cluster.service,
    durationMs: roundMs(ms),
    bytesIn: client.bytesRead,
    bytesOut: client.bytesWritten,
    endpoint: endpoint?.id,
    peer: endpoint ? `${endpoint.host}:${endpoint.port}` : undefined,
    reason,
  });
}
