/**
 * Outlier ejection (passive health, after Envoy's): an endpoint whose attempts fail N times in a
 * row (5xx answers, the peer's mesh errors, connect failures, resets, timeouts) is left out of
 * balancing for the base ejection time × the number of times it has been ejected, then comes back
 * by itself. At most a set share of an upstream's endpoints is out at once (at least one, so two
 * instances can lose the bad one); when every endpoint is out, balancing uses them all (panic)
 * rather than refusing everything.
 *
 * The balance stage asks `available()` for the list to pick from: the cluster's own list while
 * nothing is ejected (so balancers keep their state), else a filtered copy made once per change.
 * Returns are noticed on the next pick past their time; no timer runs.
 */
import type { Endpoint } from '../endpoint.js';
import type { OutlierSettings } from './resilience.js';

/** What one attempt said about its endpoint. */
export type Verdict = 'success' | 'failure';

/** Per endpoint: kept on the Endpoint, so it survives snapshots that keep the endpoint. */
export interface OutlierState {
  consecutive: number;
  /** performance.now() until which it is out; 0 when in. */
  ejectedUntil: number;
  /** Times ejected; it decays by one for every review interval the endpoint spends in and well. */
  ejections: number;
  /** When its ejection count last decayed (or it came back). */
  since: number;
}

export function newOutlierState(): OutlierState {
  return { consecutive: 0, ejectedUntil: 0, ejections: 0, since: 0 };
}

export class OutlierDetector {
  settings: OutlierSettings;
  #all: readonly Endpoint[] = [];
  #available: readonly Endpoint[] = [];
  #ejected = 0;
  /** The earliest return among the ejected (Infinity when none). */
  #nextReturn = Infinity;
  /** Ejections so far (the upstream's figure). */
  total = 0;

  constructor(settings: OutlierSettings) {
    this.settings = settings;
  }

  /** The cluster's endpoint list changed (a snapshot). */
  setEndpoints(endpoints: readonly Endpoint[], now: number): void {
    this.#all = endpoints;
    this.#recompute(now);
  }

  /** Endpoints to balance over: the ones not ejected, or all of them when all are (panic). */
  available(now: number): readonly Endpoint[] {
    if (this.#ejected > 0 && now >= this.#nextReturn) this.#recompute(now);
    return this.#available;
  }

  get ejectedCount(): number {
    return this.#ejected;
  }

  /**
   * Records how an attempt on `ep` ended; returns true when this ejected it (the caller logs).
   */
  record(ep: Endpoint, verdict: Verdict, now: number): boolean {
    const st = ep.outlier;
    if (verdict === 'success') {
      st.consecutive = 0;
      if (st.ejections > 0 && st.ejectedUntil === 0 && now - st.since >= this.settings.intervalMs) {
        st.ejections -= 1;
        st.since = now;
      }
      return false;
    }
    const s = this.settings;
    // Off: nothing is counted, so turning it on later starts from zero.
    if (s.consecutiveErrors === 0) return false;
    st.consecutive += 1;
    if (st.consecutive < s.consecutiveErrors || st.ejectedUntil > now) return false;
    if (this.#ejected >= this.#maxEjected()) return false;
    st.consecutive = 0;
    st.ejections += 1;
    st.ejectedUntil = now + s.baseEjectionTimeMs * st.ejections;
    this.total += 1;
    this.#recompute(now);
    return true;
  }

  #maxEjected(): number {
    const pct = this.settings.maxEjectionPercent;
    if (pct <= 0) return 0;
    return Math.max(1, Math.floor((this.#all.length * pct) / 100));
  }

  #recompute(now: number): void {
    let ejected = 0;
    let next = Infinity;
    for (const e of this.#all) {
      const st = e.outlier;
      if (st.ejectedUntil === 0) continue;
      if (st.ejectedUntil <= now) {
        st.ejectedUntil = 0;
        st.since = now;
        continue;
      }
      ejected += 1;
      if (st.ejectedUntil < next) next = st.ejectedUntil;
    }
    this.#ejected = ejected;
    this.#nextReturn = next;
    if (ejected === 0 || ejected >= this.#all.length) this.#available = this.#all;
    else this.#available = this.#all.filter((e) => e.outlier.ejectedUntil === 0);
  }
}

/** 5xx answers, mesh errors and no answer at all count against an endpoint; the rest for it. */
export function verdictOf(o: { kind: string; status?: number }): Verdict | undefined {
  switch (o.kind) {
    case 'response':
      return o.status! >= 500 ? 'failure' : 'success';
    case 'connect-failure':
    case 'reset':
    case 'timeout':
      return 'failure';
    default:
      return undefined;
  }
}
