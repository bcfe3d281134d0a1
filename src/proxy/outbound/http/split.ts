/**
 * Stage 2, split: which target of the route a request goes to, picked by weight (canary and
 * gradual rollout, issue 14). A target is a cluster — later a subset of one — and the load
 * balancing policy to use on its endpoints, so the balance stage takes its policy as input
 * (service-resolver sets it per service). One target is the common case and costs no random
 * number.
 */
import type { LoadBalancerName } from '../../snapshot.js';
import type { Random } from '../balancers.js';
import type { Cluster } from '../cluster.js';

export interface SplitTarget {
  /** Relative weight (> 0); the weights of a route need not sum to anything in particular. */
  readonly weight: number;
  readonly cluster: Cluster;
  /** The balancer for this target's endpoints. */
  readonly policy: LoadBalancerName;
}

/** One target, by weight; undefined only for an empty list. */
export function split<T extends { readonly weight: number }>(targets: readonly T[], random: Random): T | undefined {
  if (targets.length <= 1) return targets[0];
  let total = 0;
  for (const t of targets) total += t.weight;
  let at = random() * total;
  for (const t of targets) {
    at -= t.weight;
    if (at < 0) return t;
  }
  // random() returned (nearly) 1 and rounding left `at` at 0: the last target.
  return targets[targets.length - 1];
}
