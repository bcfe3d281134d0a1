/**
 * The traffic policy of one service as the dashboard's service detail shows it: the
 * service-router's routes (what they match, where they send), the service-splitter's weights
 * next to the share each target really got in the metrics window (the live weights), and the
 * service-resolver's subsets with the figures callers saw of each. Pure: one snapshot in.
 */
import type { ConfigEntry, ServiceRoute } from '../api/config-entries.js';
import type { ServiceMetricsView } from '../api/metrics.js';

export interface PolicyRouteRow {
  /** 1-based, as reasons name it (`route 2 of service-router api`). */
  number: number;
  match: string;
  destination: string;
}

export interface PolicySplitRow {
  /** `v1` for a subset of this service, `other/v2` or `other` for another service. */
  target: string;
  weight: number;
  /** Share of the requests this target got in the window, 0..100; null without traffic figures. */
  livePercent: number | null;
}

export interface PolicySubsetRow {
  name: string;
  filter: string;
  isDefault: boolean;
  rps: number | null;
  successRate: number | null;
  p99Ms: number | null;
  requests: number | null;
}

export interface PolicyDetail {
  routes: PolicyRouteRow[];
  splits: PolicySplitRow[];
  subsets: PolicySubsetRow[];
  /** The resolver's (else service-defaults') balancer, e.g. `ring_hash (cookie session)`. */
  loadBalancer: string | null;
}

function find<K extends ConfigEntry['kind']>(
  entries: readonly ConfigEntry[],
  kind: K,
  name: string,
): Extract<ConfigEntry, { kind: K }> | undefined {
  return entries.find((e) => e.kind === kind && e.name === name) as Extract<ConfigEntry, { kind: K }> | undefined;
}

/** `header x-canary = 1, GET`: a route's match in a few words. */
export function describeMatch(r: ServiceRoute): string {
  const m = r.match?.http;
  if (!m) return 'everything';
  const parts: string[] = [];
  if (m.path_exact !== undefined) parts.push(`path = ${m.path_exact}`);
  if (m.path_prefix !== undefined) parts.push(`path ${m.path_prefix}*`);
  if (m.path_regex !== undefined) parts.push(`path ~ ${m.path_regex}`);
  if (m.methods) parts.push(m.methods.join(','));
  for (const h of m.header ?? []) {
    const not = h.invert ? 'not ' : '';
    if (h.present) parts.push(`${not}header ${h.name}`);
    else if (h.exact !== undefined) parts.push(`header ${h.name} ${h.invert ? '!=' : '='} ${h.exact}`);
    else if (h.prefix !== undefined) parts.push(`${not}header ${h.name} ${h.prefix}*`);
    else if (h.suffix !== undefined) parts.push(`${not}header ${h.name} *${h.suffix}`);
    else if (h.regex !== undefined) parts.push(`${not}header ${h.name} ~ ${h.regex}`);
  }
  for (const q of m.query_param ?? []) {
    if (q.present) parts.push(`query ${q.name}`);
    else if (q.exact !== undefined) parts.push(`query ${q.name} = ${q.exact}`);
    else if (q.regex !== undefined) parts.push(`query ${q.name} ~ ${q.regex}`);
  }
  return parts.length === 0 ? 'everything' : parts.join(', ');
}

function targetLabel(own: string, service: string | undefined, subset: string | undefined): string {
  const svc = service ?? own;
  if (svc === own) return subset ?? (service ? svc : 'split');
  return subset ? `${svc}/${subset}` : svc;
}

function describeDestination(own: string, r: ServiceRoute): string {
  const d = r.destination;
  const to = targetLabel(own, d?.service, d?.service_subset);
  return d?.prefix_rewrite !== undefined ? `${to}, rewrite to ${d.prefix_rewrite}` : to;
}

/** The service's policy, or null when no router, splitter or resolver names it. */
export function policyDetail(
  entries: readonly ConfigEntry[] | undefined,
  name: string,
  m: ServiceMetricsView | undefined,
): PolicyDetail | null {
  const all = entries ?? [];
  const router = find(all, 'service-router', name);
  const splitter = find(all, 'service-splitter', name);
  const resolver = find(all, 'service-resolver', name);
  if (!router && !splitter && !resolver) return null;
  const figures = new Map((m?.subsets ?? []).map((s) => [s.subset, s]));
  const total = [...figures.values()].reduce((a, s) => a + s.requests, 0);
  const routes = (router?.routes ?? []).map((r, i) => ({
    number: i + 1,
    match: describeMatch(r),
    destination: describeDestination(name, r),
  }));
  const splits = (splitter?.splits ?? []).map((s) => {
    const svc = s.service ?? name;
    const key = s.service_subset ? `${svc}/${s.service_subset}` : svc;
    const f = figures.get(key);
    return {
      target: targetLabel(name, s.service, s.service_subset),
      weight: s.weight,
      livePercent: total > 0 ? Math.round(((f?.requests ?? 0) / total) * 1000) / 10 : null,
    };
  });
  const subsets = Object.entries(resolver?.subsets ?? {}).map(([sub, def]) => {
    const f = figures.get(`${name}/${sub}`);
    return {
      name: sub,
      filter: def.filter,
      isDefault: resolver?.default_subset === sub,
      rps: f ? f.rps : null,
      successRate: f ? f.successRate : null,
      p99Ms: f ? f.p99Ms : null,
      requests: f ? f.requests : null,
    };
  });
  const lb = resolver?.load_balancer ?? find(all, 'service-defaults', name)?.load_balancer;
  const keys = (lb?.hash_policies ?? []).map((h) => (h.source_ip ? 'source ip' : `${h.field} ${h.field_value}`));
  return {
    routes,
    splits,
    subsets,
    loadBalancer: lb ? `${lb.policy}${keys.length > 0 ? ` (${keys.join(', ')})` : ''}` : null,
  };
}
