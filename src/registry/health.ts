/** How the registry turns check states and node liveness into one instance status. */
import type { CheckStatus, InstanceView, ServiceInstance } from '../api/schemas.js';

const RANK: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

/**
 * Worst check wins; a check never reported is critical (as in Consul, an instance is not
 * trusted before its first check passes); an instance whose node's lease expired is critical,
 * and so is one whose sidecar drains (callers must stop sending before its listeners close).
 */
export function instanceStatus(instance: ServiceInstance, nodeAlive: boolean): CheckStatus {
  if (!nodeAlive || instance.drainingSince !== undefined) return 'critical';
  let worst: CheckStatus = 'passing';
  for (const check of instance.checks) {
    const state = instance.checkStates[check.id]?.status ?? 'critical';
    if (RANK[state] > RANK[worst]) worst = state;
  }
  return worst;
}

/** Healthy for discovery: passing or warning (warning still serves traffic, as in Consul). */
export function isHealthy(view: Pick<InstanceView, 'status'>): boolean {
  return view.status !== 'critical';
}

export function toView(instance: ServiceInstance, nodeAlive: boolean): InstanceView {
  return { ...instance, nodeAlive, status: instanceStatus(instance, nodeAlive) };
}
