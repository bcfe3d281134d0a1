/**
 * Mesh-wide traffic figures, kept in memory only (they are not state: losing them on restart
 * loses nothing). Agents push the cumulative counters and HDR histograms of their proxies;
 * rates and percentiles over the last window are the difference between the newest report
 * and the oldest one inside the window, summed across nodes.
 */
import * as hdr from 'hdr-histogram-js';
import type {
  MetricsOverview,
  NodeMetricsReport,
  ProxyMetrics,
  ServiceMetricsView,
  TrafficCounters,
} from '../api/metrics.js';

const WINDOW_MS = 10_000;
/** A node that stopped reporting for this long no longer counts. */
const STALE_MS = 30_000;

interface Sample {
  at: number;
  report: NodeMetricsReport;
}

interface Delta {
  requests: number;
  errors: number;
  active: number;
  seconds: number;
  latency: hdr.Histogram | undefined;
  meshErrors: Record<string, number>;
}

export class MetricsHub {
  private readonly samples = new Map<string, Sample[]>();

  constructor(private readonly now: () => number = Date.now) {}

  ingest(node: string, report: NodeMetricsReport): void {
    const at = this.now();
    const list = this.samples.get(node) ?? [];
    list.push({ at, report });
    // Keep one sample older than the window, as the base of the difference.
    while (list.length > 2 && list[1]!.at <= at - WINDOW_MS) list.shift();
    this.samples.set(node, list);
  }

  overview(): MetricsOverview {
    const now = this.now();
    const byService = new Map<string, ServiceMetricsView>();
    const svcDeltas = new Map<string, Delta[]>();
    const upDeltas = new Map<string, Map<string, { total: Delta[]; endpoints: Map<string, Delta[]> }>>();

    for (const [node, list] of this.samples) {
      const newest = list[list.length - 1];
      if (!newest || newest.at < now - STALE_MS) {
        this.samples.delete(node);
        continue;
      }
      const base = list.find((s) => s.at >= newest.at - WINDOW_MS - 1000 && s !== newest) ?? list[0]!;
      const seconds = Math.max(1, (newest.at - base.at) / 1000);
      for (const p of newest.report.proxies) {
        const before = base === newest ? undefined : base.report.proxies.find((x) => x.serviceId === p.serviceId);
        const view = byService.get(p.service) ?? emptyView(p.service);
        byService.set(p.service, view);
        const d = delta(p.inbound, before?.inbound, seconds);
        (svcDeltas.get(p.service) ?? svcDeltas.set(p.service, []).get(p.service)!).push(d);
        view.instances.push({ node, serviceId: p.serviceId, ...rates(d) });
        const ups = upDeltas.get(p.service) ?? upDeltas.set(p.service, new Map()).get(p.service)!;
        for (const u of p.upstreams) {
          const prevU = before?.upstreams.find((x) => x.service === u.service);
          const slot = ups.get(u.service) ?? ups.set(u.service, { total: [], endpoints: new Map() }).get(u.service)!;
          slot.total.push(delta(u, prevU, seconds));
          for (const e of u.endpoints) {
            const prevE = prevU?.endpoints.find((x) => x.endpoint === e.endpoint);
            (slot.endpoints.get(e.endpoint) ?? slot.endpoints.set(e.endpoint, []).get(e.endpoint)!).push(
              delta(e, prevE, seconds),
            );
          }
        }
      }
    }

    for (const [name, view] of byService) {
      Object.assign(view, rates(merge(svcDeltas.get(name) ?? [])));
      view.instances.sort((a, b) => a.node.localeCompare(b.node));
      for (const [service, slot] of upDeltas.get(name) ?? []) {
        const total = merge(slot.total);
        view.upstreams.push({
          service,
          ...rates(total),
          meshErrors: total.meshErrors,
          endpoints: [...slot.endpoints].map(([endpoint, ds]) => {
            const r = rates(merge(ds));
            return { endpoint, rps: r.rps, successRate: r.successRate, p99Ms: r.p99Ms };
          }),
        });
      }
    }
    return {
      windowSeconds: WINDOW_MS / 1000,
      generatedAt: new Date(now).toISOString(),
      services: [...byService.values()].sort((a, b) => a.name.localeCompare(b.name)),
    };
  }
}

function emptyView(name: string): ServiceMetricsView {
  return {
    name,
    rps: 0,
    successRate: null,
    p50Ms: null,
    p99Ms: null,
    maxMs: null,
    activeConnections: 0,
    instances: [],
    upstreams: [],
  };
}

function errorsOf(c: TrafficCounters): number {
  return (c.responses['5xx'] ?? 0) + Object.values(c.meshErrors).reduce((a, b) => a + b, 0);
}

function decode(s: string): hdr.Histogram | undefined {
  if (!s) return undefined;
  try {
    return hdr.decodeFromCompressedBase64(s);
  } catch {
    return undefined;
  }
}

function delta(now: TrafficCounters, before: TrafficCounters | undefined, seconds: number): Delta {
  const latency = decode(now.latency);
  const prev = before ? decode(before.latency) : undefined;
  // A counter going backwards means the proxy restarted: count from zero.
  const restarted = before !== undefined && now.requests < before.requests;
  if (latency && prev && !restarted) latency.subtract(prev);
  const meshErrors: Record<string, number> = {};
  for (const [k, v] of Object.entries(now.meshErrors)) {
    const d = v - (restarted ? 0 : (before?.meshErrors[k] ?? 0));
    if (d > 0) meshErrors[k] = d;
  }
  return {
    requests: Math.max(0, now.requests - (restarted || !before ? 0 : before.requests)),
    errors: Math.max(0, errorsOf(now) - (restarted || !before ? 0 : errorsOf(before))),
    active: now.activeConnections,
    seconds,
    latency,
    meshErrors,
  };
}

function merge(ds: Delta[]): Delta {
  const out: Delta = {
    requests: 0,
    errors: 0,
    active: 0,
    seconds: Math.max(1, ...ds.map((d) => d.seconds)),
    latency: undefined,
    meshErrors: {},
  };
  for (const d of ds) {
    out.requests += d.requests;
    out.errors += d.errors;
    out.active += d.active;
    if (d.latency) {
      if (!out.latency)
        out.latency = hdr.build({
          lowestDiscernibleValue: 1,
          highestTrackableValue: 3_600_000_000,
          numberOfSignificantValueDigits: 3,
        });
      out.latency.add(d.latency);
    }
    for (const [k, v] of Object.entries(d.meshErrors)) out.meshErrors[k] = (out.meshErrors[k] ?? 0) + v;
  }
  return out;
}

function rates(d: Delta): {
  rps: number;
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  activeConnections: number;
} {
  const has = d.latency !== undefined && d.latency.totalCount > 0;
  return {
    rps: Math.round((d.requests / d.seconds) * 10) / 10,
    successRate: d.requests === 0 ? null : Math.max(0, (d.requests - d.errors) / d.requests),
    p50Ms: has ? d.latency!.getValueAtPercentile(50) / 1000 : null,
    p99Ms: has ? d.latency!.getValueAtPercentile(99) / 1000 : null,
    maxMs: has ? d.latency!.maxValue / 1000 : null,
    activeConnections: d.active,
  };
}

export type { ProxyMetrics };
