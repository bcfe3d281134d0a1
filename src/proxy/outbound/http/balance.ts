/**
 * Stage 3, balance: one endpoint of the split's target that this request has not tried yet,
 * by the target's policy (round robin counting weights by default, weighted, least request,
 * random: ../balancers.ts). The policy is an input, not a property of the cluster: the
 * service-resolver (issue 14) chooses it per service, and each policy keeps its own state per
 * cluster.
 */
import type { LoadBalancerName } from '../../snapshot.js';
import type { Cluster } from '../cluster.js';
import type { Endpoint } from '../endpoint.js';

export interface BalanceInput {
  readonly cluster: Cluster;
  readonly policy: LoadBalancerName;
  /** Endpoints already tried for this request (each is tried at most once). */
  readonly tried: readonly Endpoint[] | undefined;
}

export function balance(input: BalanceInput): Endpoint | undefined {
  const cluster = input.cluster;
  return cluster.balancerFor(input.policy).pick(cluster.endpoints, input.tried);
}
