/**
 * Mesh-wide traffic figures, kept in memory only (they are not state: losing them on restart
 * loses nothing). Agents push the cumulative counters and HDR histograms of their proxies;
 * rates and percentiles over the last window are the difference between the newest report
 * and the oldest one inside the window, summed across nodes. A service's request figures are
 * summed over its callers' outbound figures for it; its connections and bytes over its inbounds.
 *
 * With several registries (etcd), each agent reports to the one it is on, so each registry
 * holds only its own agents' samples. A registry asked for the overview adds the samples its
 * peers hold (`localSamples()` of each, fetched by metrics-peers.ts) before merging; a node
 * that moved between registries is taken from whichever holds its newest sample, so nothing
 * is counted twice.
 */
// Two modules of hdr-histogram-js rather than its index (which adds its log reader and
// writer and the recorder), as in proxy/traffic.ts: a few MB less resident in every registry.
import { decodeFromCompressedBase64 } from 'hdr-histogram-js/dist/encoding.js';
import { build } from 'hdr-histogram-js/dist/HistogramBuilder.js';
import type {
  MetricsOverview,
  NodeMetricsReport,
  ProxyMetrics,
  RequestFigures,
  ServiceMetricsView,
  TrafficCounters,
} from '../api/metrics.js';
import { addResilience, emptyResilience, resilienceWindow, type ResilienceWindow } from '../api/resilience-window.js';
import { addCounts, countsSince } from '../util/counts.js';

type Histogram = ReturnType<typeof build>;

const WINDOW_MS = 10_000;
/** A node that stopped reporting for this long no longer counts. */
const STALE_MS = 30_000;

interface Sample {
  at: number;
  report: NodeMetricsReport;
}

/**
 * The samples one registry holds, as it hands them to a peer: per node, oldest first, each
 * with its age rather than its time, so the two registries' clocks need not agree.
 */
export interface NodeSamples {
  nodes: Record<string, Array<{ ageMs: number; report: NodeMetricsReport }>>;
}

interface Delta {
  requests: number;
  errors: number;
  active: number;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  latency: Histogram | undefined;
  meshErrors: Record<string, number>;
}

/** One service's deltas in the window, gathered over every node's newest report. */
interface ServiceAcc {
  /** Callers' upstream totals for this service as a destination (once per request). */
  callers: Delta[];
  callerIds: Set<string>;
  /** Callers' attempts per instance (`id@node`). */
  attempts: Map<string, Delta[]>;
  /** The service's own inbound sides, per instance (`id@node`). */
  inbound: Map<string, { node: string; serviceId: string; d: Delta }>;
  /** What this service's sidecars saw of each of its upstreams, as a caller. */
  upstreams: Map<
    string,
    { total: Delta[]; resilience: ResilienceWindow; endpoints: Map<string, { node?: string; ds: Delta[] }> }
  >;
  /** Callers' figures per traffic-policy target of this service (`api/v2`). */
  subsets: Map<string, Delta[]>;
  /** What callers' resilience did towards this service in the window, summed. */
  resilience: ResilienceWindow;
}

const acc = (): ServiceAcc => ({
  callers: [],
  callerIds: new Set(),
  attempts: new Map(),
  inbound: new Map(),
  upstreams: new Map(),
  subsets: new Map(),
  resilience: emptyResilience(),
});

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

export class MetricsHub {
  readonly #samples = new Map<string, Sample[]>();

  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  ingest(node: string, report: NodeMetricsReport): void {
    const at = this.#now();
    const list = this.#samples.get(node) ?? [];
    list.push({ at, report });
    // Keep one sample older than the window, as the base of the difference.
    while (list.length > 2 && list[1]!.at <= at - WINDOW_MS) list.shift();
    this.#samples.set(node, list);
  }

  /** This registry's own samples, fresh ones only, for a peer registry's overview. */
  localSamples(): NodeSamples {
    const now = this.#now();
    this.#prune(now);
    const nodes: NodeSamples['nodes'] = {};
    for (const [node, list] of this.#samples)
      nodes[node] = list.map((x) => ({ ageMs: Math.max(0, now - x.at), report: x.report }));
    return { nodes };
  }

  #prune(now: number): void {
    for (const [node, list] of this.#samples) {
      const newest = list[list.length - 1];
      if (!newest || newest.at < now - STALE_MS) this.#samples.delete(node);
    }
  }

  /**
   * Per-service figures. Request figures of a service are its callers' (see ServiceMetricsView):
   * an inbound that pipes bytes sees no requests, and a caller's view is the one that counts a
   * request once, with the outcome the caller's app got. `peers` are the samples other
   * registries hold (their agents'): a node found in several places counts once, from the
   * place with its newest sample.
   */
  overview(peers: readonly NodeSamples[] = []): MetricsOverview {
    const now = this.#now();
    this.#prune(now);
    const all = new Map(this.#samples);
    for (const p of peers) {
      for (const [node, list] of Object.entries(p.nodes)) {
        const theirs = list.map((x) => ({ at: now - x.ageMs, report: x.report })).sort((a, b) => a.at - b.at);
        const newest = theirs[theirs.length - 1];
        if (!newest || newest.at < now - STALE_MS) continue;
        const mine = all.get(node);
        if (!mine || mine[mine.length - 1]!.at < newest.at) all.set(node, theirs);
      }
    }
    const services = new Map<string, ServiceAcc>();
    const of = (name: string) => services.get(name) ?? services.set(name, acc()).get(name)!;

    for (const [node, list] of all) {
      const newest = list[list.length - 1]!;
      const base = list.find((s) => s.at >= newest.at - WINDOW_MS - 1000 && s !== newest) ?? list[0]!;
      const seconds = Math.max(1, (newest.at - base.at) / 1000);
      for (const p of newest.report.proxies) {
        const before = base === newest ? undefined : base.report.proxies.find((x) => x.serviceId === p.serviceId);
        const own = of(p.service);
        own.inbound.set(`${p.serviceId}@${node}`, {
          node,
          serviceId: p.serviceId,
          d: delta(p.inbound, before?.inbound, seconds),
        });
        for (const u of p.upstreams) {
          const prevU = before?.upstreams.find((x) => x.service === u.service);
          const total = delta(u, prevU, seconds);
          const dest = of(u.service);
          dest.callers.push(total);
          if (total.requests > 0) dest.callerIds.add(`${p.serviceId}@${node}`);
          const slot =
            own.upstreams.get(u.service) ??
            own.upstreams
              .set(u.service, { total: [], resilience: emptyResilience(), endpoints: new Map() })
              .get(u.service)!;
          slot.total.push(total);
          const res = resilienceWindow(u.resilience, prevU?.resilience);
          addResilience(slot.resilience, res);
          addResilience(dest.resilience, res);
          for (const e of u.endpoints) {
            const prevE = prevU?.endpoints.find(
              (x) => x.endpoint === e.endpoint && x.node === e.node && x.subset === e.subset,
            );
            const d = delta(e, prevE, seconds);
            const key = `${instanceIdOf(e.endpoint, e.node)}@${e.node ?? ''}`;
            const ep =
              slot.endpoints.get(key) ??
              slot.endpoints.set(key, { ds: [], ...(e.node ? { node: e.node } : {}) }).get(key)!;
            ep.ds.push(d);
            push(dest.attempts, key, d);
          }
          for (const sub of u.subsets ?? []) {
            const prevS = prevU?.subsets?.find((x) => x.subset === sub.subset);
            // `api/v2`: the target's service is the part before the slash (a split may go to another service).
            const svc = sub.subset.split('/')[0]!;
            push(of(svc).subsets, sub.subset, delta(sub, prevS, seconds));
          }
        }
      }
    }

    const views: ServiceMetricsView[] = [];
    for (const [name, a] of services) {
      const callers = merge(a.callers);
      const inbound = merge([...a.inbound.values()].map((x) => x.d));
      const r = rates(callers);
      // Instances: every inbound that reported, and every endpoint callers tried.
      const rows = new Map<string, { node: string; serviceId: string; active: number; ds: Delta[] }>();
      for (const [key, x] of a.inbound)
        rows.set(key, { node: x.node, serviceId: x.serviceId, active: x.d.active, ds: [] });
      for (const [key, ds] of a.attempts) {
        const at = key.lastIndexOf('@');
        const serviceId = key.slice(0, at);
        const node = key.slice(at + 1);
        // An endpoint reported without its node (an older agent) matches an instance by id only.
        const row =
          rows.get(key) ??
          (node === '' ? [...rows.values()].find((i) => i.serviceId === serviceId) : undefined) ??
          rows.set(key, { node, serviceId, active: 0, ds: [] }).get(key)!;
        row.ds.push(...ds);
      }
      const instances = [...rows.values()].map((x) => {
        const d = merge(x.ds);
        return {
          node: x.node,
          serviceId: x.serviceId,
          ...requestFigures(rates(d)),
          attempts: d.requests,
          failed: Math.min(d.requests, d.errors),
          activeConnections: x.active,
        };
      });
      views.push({
        name,
        ...requestFigures(r),
        maxMs: r.maxMs,
        requests: callers.requests,
        failed: Math.min(callers.requests, callers.errors),
        meshErrors: callers.meshErrors,
        callers: a.callerIds.size,
        resilience: a.resilience,
        activeConnections: inbound.active,
        bytesInPerSec: Math.round(inbound.bytesIn / inbound.seconds),
        bytesOutPerSec: Math.round(inbound.bytesOut / inbound.seconds),
        instances: instances.sort((x, y) => x.node.localeCompare(y.node) || x.serviceId.localeCompare(y.serviceId)),
        ...(a.subsets.size > 0
          ? {
              subsets: [...a.subsets]
                .sort((x, y) => x[0].localeCompare(y[0]))
                .map(([subset, ds]) => {
                  const d = merge(ds);
                  return {
                    subset,
                    ...requestFigures(rates(d)),
                    requests: d.requests,
                    failed: Math.min(d.requests, d.errors),
                  };
                }),
            }
          : {}),
        upstreams: [...a.upstreams]
          .sort((x, y) => x[0].localeCompare(y[0]))
          .map(([service, slot]) => {
            const total = merge(slot.total);
            return {
              service,
              ...requestFigures(rates(total)),
              meshErrors: total.meshErrors,
              resilience: slot.resilience,
              endpoints: [...slot.endpoints].map(([key, ep]) => {
                const er = rates(merge(ep.ds));
                return {
                  endpoint: key.slice(0, key.lastIndexOf('@')),
                  ...(ep.node ? { node: ep.node } : {}),
                  rps: er.rps,
                  successRate: er.successRate,
                  p99Ms: er.p99Ms,
                };
              }),
            };
          }),
      });
    }
    return {
      windowSeconds: WINDOW_MS / 1000,
      generatedAt: new Date(now).toISOString(),
      services: views.sort((a, b) => a.name.localeCompare(b.name)),
    };
  }
}

/** The agent names endpoints `<instance>.<node>` (unique per upstream): the instance id again. */
function instanceIdOf(endpoint: string, node: string | undefined): string {
  return node !== undefined && endpoint.endsWith(`.${node}`) ? endpoint.slice(0, -node.length - 1) : endpoint;
}

function errorsOf(c: TrafficCounters): number {
  return (c.responses['5xx'] ?? 0) + Object.values(c.meshErrors).reduce((a, b) => a + b, 0);
}

function decode(s: string): Histogram | undefined {
  if (!s) return undefined;
  try {
    return decodeFromCompressedBase64(s);
  } catch {
    return undefined;
  }
}

function emptyDelta(): Delta {
  return { requests: 0, errors: 0, active: 0, bytesIn: 0, bytesOut: 0, seconds: 1, latency: undefined, meshErrors: {} };
}

function delta(now: TrafficCounters, before: TrafficCounters | undefined, seconds: number): Delta {
  const latency = decode(now.latency);
  const prev = before ? decode(before.latency) : undefined;
  // A counter going backwards means the proxy restarted: count from zero.
  const restarted =
    before !== undefined &&
    (now.requests < before.requests || now.totalConnections < before.totalConnections || now.bytesIn < before.bytesIn);
  const base = restarted ? undefined : before;
  if (latency && prev && base) latency.subtract(prev);
  const meshErrors = countsSince(now.meshErrors, base?.meshErrors);
  return {
    requests: Math.max(0, now.requests - (base?.requests ?? 0)),
    errors: Math.max(0, errorsOf(now) - (base ? errorsOf(base) : 0)),
    active: now.activeConnections,
    bytesIn: Math.max(0, now.bytesIn - (base?.bytesIn ?? 0)),
    bytesOut: Math.max(0, now.bytesOut - (base?.bytesOut ?? 0)),
    seconds,
    latency,
    meshErrors,
  };
}

function merge(ds: Delta[]): Delta {
  const out: Delta = { ...emptyDelta(), seconds: Math.max(1, ...ds.map((d) => d.seconds)) };
  for (const d of ds) {
    out.requests += d.requests;
    out.errors += d.errors;
    out.active += d.active;
    out.bytesIn += d.bytesIn;
    out.bytesOut += d.bytesOut;
    if (d.latency) {
      if (!out.latency)
        out.latency = build({
          lowestDiscernibleValue: 1,
          highestTrackableValue: 3_600_000_000,
          numberOfSignificantValueDigits: 3,
        });
      out.latency.add(d.latency);
    }
    addCounts(out.meshErrors, d.meshErrors);
  }
  return out;
}

interface Rates {
  rps: number;
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

function rates(d: Delta): Rates {
  const has = d.latency !== undefined && d.latency.totalCount > 0;
  return {
    rps: Math.round((d.requests / d.seconds) * 10) / 10,
    successRate: d.requests === 0 ? null : Math.max(0, (d.requests - d.errors) / d.requests),
    p50Ms: has ? d.latency!.getValueAtPercentile(50) / 1000 : null,
    p99Ms: has ? d.latency!.getValueAtPercentile(99) / 1000 : null,
    maxMs: has ? d.latency!.maxValue / 1000 : null,
  };
}

function requestFigures(r: Rates): RequestFigures {
  return { rps: r.rps, successRate: r.successRate, p50Ms: r.p50Ms, p99Ms: r.p99Ms };
}

export type { ProxyMetrics };
