/** Clusters and outcomes made by hand for the pipeline's stage tests (no sockets). */
import { createSecureContext } from 'node:tls';
import { RevokedServers } from '../../../../src/proxy/outbound/revoked-servers.js';
import type { Random } from '../../../../src/proxy/outbound/balancers.js';
import { Cluster } from '../../../../src/proxy/outbound/cluster.js';
import type { ConnectFailure } from '../../../../src/proxy/outbound/dial.js';
import type { Outcome, ResponseBody } from '../../../../src/proxy/outbound/http/outcome.js';
import type { LoadBalancerName } from '../../../../src/proxy/snapshot.js';

export function cluster(
  service: string,
  endpoints: Array<{ id: string; weight?: number }>,
  loadBalancer: LoadBalancerName = 'round_robin',
  random: Random = () => 0,
): Cluster {
  return new Cluster(
    {
      service,
      protocol: 'http',
      localAddress: '127.0.0.1',
      localPort: 0,
      loadBalancer,
      endpoints: endpoints.map((e, i) => ({
        id: e.id,
        node: `n${i}`,
        address: '127.0.0.1',
        port: 1000 + i,
        weight: e.weight ?? 1,
      })),
    },
    { secureContext: createSecureContext(), trustDomain: 'test.mesh', revoked: new RevokedServers() },
    { connectTimeoutMs: 1000, idleTimeoutMs: 1000, random },
  );
}

export class FakeBody implements ResponseBody {
  discarded = false;
  relay(): void {}
  discard(): void {
    this.discarded = true;
  }
}

export function response(status: number, peerReason?: string): Outcome & { body: FakeBody } {
  const kind = peerReason?.split(' ')[0];
  return {
    kind: 'response',
    status,
    statusMessage: undefined,
    headers: peerReason === undefined ? {} : { 'x-meshctl-reason': peerReason },
    body: new FakeBody(),
    peerReason,
    peerKind: kind as never,
  };
}

export function connectFailure(): Outcome {
  return { kind: 'connect-failure', error: { reason: 'connection-refused' } as ConnectFailure };
}

export function reset(stale: boolean): Outcome {
  return { kind: 'reset', stale, code: 'ECONNRESET', error: new Error('reset') };
}
