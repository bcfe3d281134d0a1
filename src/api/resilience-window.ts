/**
 * What resilience did over a window, from two samples of a sidecar's totals (ResilienceCounters):
 * the registry's overview (`meshctl status`, the dashboard) and the agent's own view
 * (`meshctl services`) both take the difference of the newest sample and one about a window
 * older, so "12 retries" means in the last 10 s, as the request figures beside it do.
 * `ejected` is a gauge (endpoints out now), not a difference.
 */
import { addCounts, countsSince } from '../util/counts.js';
import type { ResilienceCounters } from './metrics.js';

/**
 * One window's resilience figures: the fields of ResilienceCounters, each the difference over
 * the window (circuitOpen only the limits that refused in it), except `ejected`, the endpoints
 * out at the newest sample.
 */
export type ResilienceWindow = ResilienceCounters;

export function emptyResilience(): ResilienceWindow {
  return { retries: 0, retryBudgetExhausted: 0, timeouts: 0, circuitOpen: {}, ejections: 0, ejected: 0 };
}

/** Totals that went backwards: the sidecar restarted, so the newest totals are the window's. */
function restarted(now: ResilienceCounters, before: ResilienceCounters): boolean {
  if (now.retries < before.retries || now.retryBudgetExhausted < before.retryBudgetExhausted) return true;
  if (now.timeouts < before.timeouts || now.ejections < before.ejections) return true;
  return Object.entries(before.circuitOpen).some(([k, v]) => (now.circuitOpen[k] ?? 0) < v);
}

/** `now` − `before` (absent: an older proxy, or the first sample, which counts from zero). */
export function resilienceWindow(
  now: ResilienceCounters | undefined,
  before: ResilienceCounters | undefined,
): ResilienceWindow {
  if (now === undefined) return emptyResilience();
  const base = before !== undefined && !restarted(now, before) ? before : undefined;
  const circuitOpen = countsSince(now.circuitOpen, base?.circuitOpen);
  return {
    retries: now.retries - (base?.retries ?? 0),
    retryBudgetExhausted: now.retryBudgetExhausted - (base?.retryBudgetExhausted ?? 0),
    timeouts: now.timeouts - (base?.timeouts ?? 0),
    circuitOpen,
    ejections: now.ejections - (base?.ejections ?? 0),
    ejected: now.ejected,
  };
}

/** Adds `w` into `into` (several callers of one service, several upstreams of one sidecar). */
export function addResilience(into: ResilienceWindow, w: ResilienceWindow): ResilienceWindow {
  into.retries += w.retries;
  into.retryBudgetExhausted += w.retryBudgetExhausted;
  into.timeouts += w.timeouts;
  addCounts(into.circuitOpen, w.circuitOpen);
  into.ejections += w.ejections;
  into.ejected += w.ejected;
  return into;
}

function circuitOpenCount(w: ResilienceWindow): number {
  return Object.values(w.circuitOpen).reduce((a, b) => a + b, 0);
}

/** Whether resilience did anything in the window (or has an endpoint out now). */
export function resilienceActive(w: ResilienceWindow): boolean {
  return w.retries + w.retryBudgetExhausted + w.timeouts + circuitOpenCount(w) + w.ejections + w.ejected > 0;
}

/**
 * The window in words, only what is nonzero: `3 retries, 1 budget-exhausted, 2 timeouts,
 * 4 circuit-open, 1 ejection, 1 out now` (`limits`: the circuit-open count by limit, as
 * `4 circuit-open (max-requests 4)`); undefined when nothing happened, so a quiet service prints
 * no line.
 */
export function resilienceText(w: ResilienceWindow, o: { limits?: boolean } = {}): string | undefined {
  if (!resilienceActive(w)) return undefined;
  const n = (count: number, one: string, many = `${one}s`) =>
    count > 0 ? [`${count} ${count === 1 ? one : many}`] : [];
  const open = circuitOpenCount(w);
  const limits = Object.entries(w.circuitOpen)
    .filter(([, v]) => v > 0)
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return [
    ...n(w.retries, 'retry', 'retries'),
    ...n(w.retryBudgetExhausted, 'budget-exhausted', 'budget-exhausted'),
    ...n(w.timeouts, 'timeout'),
    ...(open > 0 ? [o.limits ? `${open} circuit-open (${limits})` : `${open} circuit-open`] : []),
    ...n(w.ejections, 'ejection'),
    ...(w.ejected > 0 ? [`${w.ejected} out now`] : []),
  ].join(', ');
}
