/**
 * L4 forwarding: one app connection ↔ one mTLS connection to an endpoint, as a byte pipe.
 * Bytes the app sends before the endpoint is reached wait in the socket's buffer (it is not
 * read until the pipe starts), so nothing is lost during failover.
 */
import type { Socket } from 'node:net';
import type { ThrottledLog } from '../log-throttle.js';
import { pipeSockets } from '../pipe.js';
import type { ReasonCounter } from '../stats.js';
import type { Cluster } from './cluster.js';
import { connectEndpoint } from './connect.js';

function ignore(): void {}

export function forwardTcp(client: Socket, cluster: Cluster, errors: ReasonCounter, log: ThrottledLog): void {
  client.on('error', ignore);
  connectEndpoint(
    cluster,
    () => !client.destroyed,
    (r) => {
      if (!r.ok) {
        if (r.reason !== 'caller-gone') {
          errors.add(r.reason);
          log.warn(r.reason, { reason: r.reason, attempts: r.failures.map((f) => `${f.endpointId}: ${f.reason}`) }, 'outbound tcp connection refused');
        }
        client.destroy();
        return;
      }
      const { socket, endpoint } = r;
      endpoint.inFlight += 1;
      socket.once('close', () => {
        endpoint.inFlight -= 1;
      });
      pipeSockets(client, socket);
    },
  );
}
