/**
 * Rows the views draw, derived from one MeshSnapshot: the catalog joined with the metrics.
 * Pure functions; views memoise them on the snapshot so a key press does not recompute them.
 */
import type { InstanceView, CheckStatus } from '../api/schemas.js';
import type { ServiceMetricsView } from '../api/metrics.js';
import type { MeshSnapshot } from './data/source.js';
import { policyDetail, type PolicyDetail } from './policy.js';
import { resilienceText } from '../api/resilience-window.js';

/**
 * A service's request figures as its callers' sidecars saw them (once per request, after
 * failover): what the apps calling it experienced, the mesh's own answers included.
 */
export interface CallerFigures {
  rps: number;
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Mesh-made answers callers got in the metrics window (no-healthy-endpoints, …), by reason. */
  meshErrors: Record<string, number>;
  /** Their sum. */
  meshErrorCount: number;
  /** Caller sidecars that sent it traffic in the window. */
  callers: number;
}

export interface ServiceRow {
  name: string;
  healthy: number;
  total: number;
  /** Instances withdrawn because their sidecar drains (counted out of healthy, on purpose). */
  draining: number;
  /** null when the registry has no figures for it (no metrics endpoint, or nobody in the mesh called it). */
  metrics: CallerFigures | null;
  /**
   * What its callers' resilience did towards it in the window, in words (`3 retries, 1 out
   * now`); undefined when nothing happened, so a quiet service has no line for it.
   */
  resilience: string | undefined;
}

export interface NodeRow {
  name: string;
  address: string;
  alive: boolean;
  lastSeen: string | undefined;
  services: number;
  /** host:port of the registry the node's agent is on, when known. */
  registry: string | undefined;
}

export interface IntentionRow {
  source: string;
  destination: string;
  action: 'allow' | 'deny';
}

/** `draining`: its sidecar was told to stop and callers no longer get it (not a failure). */
export type InstanceState = CheckStatus | 'node-down' | 'draining';

export interface InstanceRow {
  id: string;
  node: string;
  /** Where callers' sidecars reach it: the mesh port (the app's own port when it has no sidecar). */
  endpoint: string;
  state: InstanceState;
  /** Callers' attempts to this instance (a failed-over attempt counts as failed here), and its inbound connections. */
  metrics: { rps: number; successRate: number | null; p99Ms: number | null; activeConnections: number } | null;
  /** The check that explains the state best (worst first), and how many others there are. */
  check: { id: string; status: CheckStatus; output: string; others: number } | null;
}

export interface EndpointRow {
  /** `id@node` (ids repeat across nodes). */
  endpoint: string;
  rps: number;
  successRate: number | null;
  p99Ms: number | null;
}

export interface UpstreamRow {
  service: string;
  /** Where the service's apps reach it, from the registrations (e.g. 127.0.0.1:18000). */
  local: string | null;
  metrics: {
    rps: number;
    successRate: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    meshErrors: Record<string, number>;
  } | null;
  endpoints: EndpointRow[];
  /** What this service's sidecars' resilience did towards it in the window; undefined when nothing. */
  resilience: string | undefined;
}

export interface ServiceDetail {
  name: string;
  healthy: number;
  total: number;
  metrics: ServiceRow['metrics'];
  resilience: ServiceRow['resilience'];
  instances: InstanceRow[];
  /** Its routes, splits (configured and live weights) and subsets with their figures; null without policy. */
  policy: PolicyDetail | null;
  upstreams: UpstreamRow[];
}

function metricsByService(s: MeshSnapshot): Map<string, ServiceMetricsView> {
  return new Map((s.metrics?.services ?? []).map((m) => [m.name, m]));
}

/** The callers' figures of one service; null when nobody in the mesh called it in the window. */
function callerFigures(m: ServiceMetricsView | undefined): CallerFigures | null {
  if (!m) return null;
  // A registry from before caller figures has no `callers`: its figures are the inbound's.
  const callers = m.callers ?? (m.rps > 0 ? 1 : 0);
  if (callers === 0 && !(m.rps > 0)) return null;
  const meshErrors = m.meshErrors ?? {};
  return {
    rps: m.rps,
    successRate: m.successRate,
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    meshErrors,
    meshErrorCount: Object.values(meshErrors).reduce((a, b) => a + b, 0),
    callers,
  };
}

/** Instances of a service that drain, on live nodes. */
function drainingOf(s: MeshSnapshot, name: string): number {
  return s.instances.filter((i) => i.name === name && i.nodeAlive && i.drainingSince !== undefined).length;
}

export function serviceRows(s: MeshSnapshot): ServiceRow[] {
  const metrics = metricsByService(s);
  return s.services.map((svc) => {
    const m = metrics.get(svc.name);
    return {
      name: svc.name,
      healthy: svc.healthy,
      total: svc.instances,
      draining: drainingOf(s, svc.name),
      metrics: callerFigures(m),
      resilience: m?.resilience && resilienceText(m.resilience),
    };
  });
}

export function nodeRows(s: MeshSnapshot): NodeRow[] {
  return s.nodes.map((n) => ({
    name: n.name,
    address: n.address,
    alive: n.alive,
    lastSeen: n.lastSeen,
    services: n.services,
    registry: n.registry === undefined ? undefined : n.registry.replace(/^https:\/\//, ''),
  }));
}

export function intentionRows(s: MeshSnapshot): IntentionRow[] {
  return [...s.intentions]
    .sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination))
    .map((i) => ({ source: i.source, destination: i.destination, action: i.action }));
}

const SEVERITY: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };
const STATE_ORDER: Record<InstanceState, number> = {
  'node-down': 0,
  critical: 1,
  draining: 2,
  warning: 3,
  passing: 4,
};

function worstCheck(i: InstanceView): InstanceRow['check'] {
  const ids = Object.keys(i.checkStates);
  // A declared check with no report yet counts as critical, as in the registry.
  for (const c of i.checks)
    if (!ids.includes(c.id))
      return {
        id: c.id,
        status: 'critical',
        output: 'no result reported yet',
        others: Math.max(0, i.checks.length - 1),
      };
  if (ids.length === 0) return null;
  const [id, st] = Object.entries(i.checkStates).sort(
    (a, b) => SEVERITY[b[1].status] - SEVERITY[a[1].status] || a[0].localeCompare(b[0]),
  )[0]!;
  return { id, status: st.status, output: st.output, others: ids.length - 1 };
}

export function serviceDetail(s: MeshSnapshot, name: string): ServiceDetail | null {
  const summary = s.services.find((x) => x.name === name);
  if (!summary) return null;
  const m = metricsByService(s).get(name);
  const perInstance = new Map((m?.instances ?? []).map((x) => [`${x.serviceId}@${x.node}`, x]));
  const endpointOf = (i: InstanceView) => `${i.address}:${i.proxy && i.meshPort !== undefined ? i.meshPort : i.port}`;
  const instances: InstanceRow[] = s.instances
    .filter((i) => i.name === name)
    .map((i) => {
      const im = perInstance.get(`${i.id}@${i.node}`);
      return {
        id: i.id,
        node: i.node,
        endpoint: endpointOf(i),
        state: !i.nodeAlive ? 'node-down' : i.drainingSince !== undefined ? 'draining' : i.status,
        metrics: im
          ? { rps: im.rps, successRate: im.successRate, p99Ms: im.p99Ms, activeConnections: im.activeConnections }
          : null,
        check: worstCheck(i),
      } satisfies InstanceRow;
    })
    // Trouble first, so a failing instance is on screen even when the list is trimmed.
    .sort(
      (a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.node.localeCompare(b.node) || a.id.localeCompare(b.id),
    );

  const declared = new Map<string, string>();
  for (const i of s.instances) {
    if (i.name !== name) continue;
    for (const u of i.upstreams)
      if (!declared.has(u.service)) declared.set(u.service, `${u.localAddress}:${u.localPort}`);
  }
  const measured = new Map((m?.upstreams ?? []).map((u) => [u.service, u]));
  const upstreamNames = [...new Set([...declared.keys(), ...measured.keys()])].sort();
  const upstreams: UpstreamRow[] = upstreamNames.map((u) => {
    const um = measured.get(u);
    return {
      service: u,
      local: declared.get(u) ?? null,
      metrics: um
        ? { rps: um.rps, successRate: um.successRate, p50Ms: um.p50Ms, p99Ms: um.p99Ms, meshErrors: um.meshErrors }
        : null,
      endpoints: (um?.endpoints ?? [])
        .map((e) => ({
          endpoint: e.node ? `${e.endpoint}@${e.node}` : e.endpoint,
          rps: e.rps,
          successRate: e.successRate,
          p99Ms: e.p99Ms,
        }))
        .sort((a, b) => a.endpoint.localeCompare(b.endpoint)),
      resilience: um?.resilience && resilienceText(um.resilience, { limits: true }),
    };
  });
  return {
    name,
    healthy: summary.healthy,
    total: summary.instances,
    metrics: callerFigures(m),
    resilience: m?.resilience && resilienceText(m.resilience, { limits: true }),
    instances,
    policy: policyDetail(s.config, name, m),
    upstreams,
  };
}
