/**
 * Stage 2, split: which target of the route a request goes to, picked by weight (canary and
 * gradual rollout, issue 14). A target is a cluster — the upstream's own, or one subset of a
 * service (service-resolver) — with the balancer to use on its endpoints, so the balance stage
 * takes its balancer as input. One target is the common case and costs no random number.
 * A sticky route (splitter `sticky`) picks by the request's hash instead of at random, so one
 * user stays on one side.
 */
import type { Balancer, Random } from '../balancers.js';
import type { Cluster } from '../cluster.js';
import type { Endpoint } from '../endpoint.js';
import type { Traffic } from '../../traffic.js';
import type { RequestHash } from './hash.js';
import type { HeaderEdit } from './header-mods.js';
import type { RouteSettings } from './resilience.js';

export interface SplitTarget {
  /** Relative weight (> 0); the weights of a route need not sum to anything in particular. */
  readonly weight: number;
  readonly cluster: Cluster;
  /** The balancer for this target's endpoints (its state lives as long as the target). */
  readonly balancer: Balancer<Endpoint>;
  /** `api/v2` (service/subset) under a traffic policy; absent on the default route. */
  readonly name?: string;
  /** The hash a consistent-hash balancer places the request by (the resolver's hash policies). */
  readonly hash?: RequestHash;
  readonly requestHeaders?: HeaderEdit;
  readonly responseHeaders?: HeaderEdit;
  /** The target's own figures (per-subset), counted on the final answer. */
  readonly traffic?: Traffic;
  /**
   * The route's own timeouts and retries merged over this target's cluster's, once per push
   * (./policy.ts buildTable), so a request does not merge them again. Absent: the cluster's.
   */
  readonly settings?: RouteSettings;
}

/** One target, by weight; undefined only for an empty list. `at`: a fixed point in [0, 1) (sticky). */
export function split<T extends { readonly weight: number }>(
  targets: readonly T[],
  random: Random,
  at?: number,
): T | undefined {
  if (targets.length <= 1) return targets[0];
  let total = 0;
  for (const t of targets) total += t.weight;
  let left = (at ?? random()) * total;
  for (const t of targets) {
    left -= t.weight;
    if (left < 0) return t;
  }
  // random() returned (nearly) 1 and rounding left `left` at 0: the last target.
  return targets[targets.length - 1];
}
