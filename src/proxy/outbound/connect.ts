/**
 * The L4 attempt stage: a connection to some endpoint of the cluster, failing over to the
 * next endpoint the balancer offers when one cannot be reached, each endpoint at most once.
 * Every dial counts as a request on its endpoint; a failed one as that endpoint's
 * `connect-failure`, timed to the failure.
 */
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { Cluster } from './cluster.js';
import type { ConnectFailure } from './dial.js';
import type { Endpoint } from './endpoint.js';

export type ConnectResult =
  | {
      readonly ok: true;
      readonly socket: TLSSocket;
      readonly endpoint: Endpoint;
      /** performance.now() when the successful dial began. */ readonly attemptAt: number;
    }
  | {
      readonly ok: false;
      /** Why no connection was made; undefined when the caller went away first (nothing to answer). */
      readonly kind: 'no-healthy-endpoints' | 'connect-failure' | undefined;
      readonly reason: string | undefined;
      readonly failures: readonly ConnectFailure[];
    };

/**
 * Connects to the cluster. `wanted()` is asked before each attempt: when the caller has
 * gone (the app closed its socket), the attempts stop and a late connection is closed.
 * `pick`: the next endpoint not tried yet (a policy target's balancer); the cluster's own by default.
 */
export function connectEndpoint(
  cluster: Cluster,
  wanted: () => boolean,
  cb: (r: ConnectResult) => void,
  pick: (tried: readonly Endpoint[]) => Endpoint | undefined = (tried) => cluster.pickEndpoint(tried),
): void {
  const tried: Endpoint[] = [];
  const failures: ConnectFailure[] = [];
  const next = (): void => {
    const endpoint = pick(tried);
    if (!endpoint) {
      const none = tried.length === 0;
      cb({
        ok: false,
        kind: none ? 'no-healthy-endpoints' : 'connect-failure',
        reason: none ? cluster.reasons.noEndpoints : cluster.reasons.connectFailure,
        failures,
      });
      return;
    }
    tried.push(endpoint);
    endpoint.traffic.requests += 1;
    const attemptAt = performance.now();
    cluster.dial(endpoint, (err, socket) => {
      if (err) {
        endpoint.traffic.meshError('connect-failure');
        endpoint.traffic.latencyMs(performance.now() - attemptAt);
        failures.push(err);
        if (wanted()) next();
        else cb({ ok: false, kind: undefined, reason: undefined, failures });
        return;
      }
      if (!wanted()) {
        socket!.destroy();
        endpoint.traffic.latencyMs(performance.now() - attemptAt);
        cb({ ok: false, kind: undefined, reason: undefined, failures });
        return;
      }
      cb({ ok: true, socket: socket!, endpoint, attemptAt });
    });
  };
  next();
}
