/**
 * Which intention decides a (source, destination) pair. Most specific wins, as in Consul:
 * exact→exact, then *→exact, then exact→*, then *→*; nothing matching means the default.
 * Shared by the registry (`intention check`) and the inbound proxy, so both always agree.
 */
import type { Intention, IntentionAction } from './schemas.js';

export interface IntentionDecision {
  action: IntentionAction;
  /**
   * The intention that decided, or undefined when the default did. `permissions`: how many L7
   * permissions it has, when it has any: the connection is let in and they decide each request.
   */
  matched?: Pick<Intention, 'source' | 'destination' | 'action'> & { permissions?: number };
}

export function decideIntention(
  intentions: readonly Pick<Intention, 'source' | 'destination' | 'action' | 'permissions'>[],
  source: string,
  destination: string,
  defaultAction: IntentionAction,
): IntentionDecision {
  const hit = decidingIntention(intentions, source, destination);
  if (hit) {
    const l7 = hit.permissions === undefined ? {} : { permissions: hit.permissions.length };
    return {
      action: hit.action,
      matched: { source: hit.source, destination: hit.destination, action: hit.action, ...l7 },
    };
  }
  return { action: defaultAction };
}

/** The intention that decides the pair (the object itself, with whatever else it carries), or undefined. */
export function decidingIntention<T extends Pick<Intention, 'source' | 'destination'>>(
  intentions: readonly T[],
  source: string,
  destination: string,
): T | undefined {
  const order: Array<[string, string]> = [
    [source, destination],
    ['*', destination],
    [source, '*'],
    ['*', '*'],
  ];
  for (const [s, d] of order) {
    const hit = intentions.find((i) => i.source === s && i.destination === d);
    if (hit) return hit;
  }
  return undefined;
}
