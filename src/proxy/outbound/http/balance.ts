/**
 * Stage 3, balance: one endpoint of the split's target that this request has not tried yet,
 * by the target's balancer (round robin counting weights by default, weighted, least request,
 * random: ../balancers.ts; ring hash and maglev by the request's hash: ../hash-balancers.ts).
 * The balancer is an input, not a property of the cluster: the service-resolver (issue 14)
 * chooses it per subset, and each keeps its own state. Endpoints ejected as outliers (issue
 * 15, ./outlier.ts) are not offered.
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
  /** performance.now(): ejected endpoints whose time is up come back (outlier.ts). */
  readonly now: number;
}

export function balance(input: BalanceInput): Endpoint | undefined {
  // Endpoints outlier ejection has not left out (all of them when all are out: panic).
  return input.balancer.pick(input.cluster.outlier.available(input.now), input.tried, input.hash);
}
