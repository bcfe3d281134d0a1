/**
 * Stage 3, balance: one endpoint of the split's target that this request has not tried yet,
 * by the target's balancer (round robin counting weights by default, weighted, least request,
 * random: ../balancers.ts; ring hash and maglev by the request's hash: ../hash-balancers.ts).
 * The balancer is an input, not a property of the cluster: the service-resolver (issue 14)
 * chooses it per subset, and each keeps its own state.
 */
import type { Balancer } from '../balancers.js';
import type { Cluster } from '../cluster.js';
import type { Endpoint } from '../endpoint.js';

export interface BalanceInput {
  readonly cluster: Cluster;
  readonly balancer: Balancer<Endpoint>;
  /** Endpoints already tried for this request (each is tried at most once). */
  readonly tried: readonly Endpoint[] | undefined;
  /** The request's hash, for consistent-hash balancers. */
  readonly hash?: number | undefined;
}

export function balance(input: BalanceInput): Endpoint | undefined {
  return input.balancer.pick(input.cluster.endpoints, input.tried, input.hash);
}
