/**
 * What the dashboard reads, and from where. A `MeshDataSource` is one way to reach the
 * registry's read API (directly, or through this host's agent); `gatherMesh` turns one round
 * of reads into a `MeshSnapshot`, the single value every view is drawn from.
 */
import { MeshError, toMeshError } from '../../errors/index.js';
import type { RegistryPeer, RegistryStatus } from '../../api/registry-client.js';
import type { InstanceView, Intention, IntentionAction, NodeView, ServiceSummary } from '../../api/schemas.js';
import type { ConfigEntry } from '../../api/config-entries.js';
import type { MetricsOverview } from '../../api/metrics.js';

/** This host's agent as the dashboard shows it. */
export interface AgentInfo {
  node: string;
  /** The agent's own view of its registry link (its last sync). */
  registryReachable: boolean;
  /** ISO time the node certificate expires; absent when the agent could not read it. */
  nodeCertNotAfter?: string;
  /** This host's sidecars that cannot serve their service (e.g. an upstream port they cannot bind). */
  sidecarProblems?: Array<{ service: string; problem: string }>;
}

export interface MeshDataSource {
  /** Where the data comes from, for the footer and errors: "registry https://…" or "agent /run/…". */
  readonly label: string;
  status(): Promise<RegistryStatus>;
  services(): Promise<ServiceSummary[]>;
  instances(): Promise<InstanceView[]>;
  nodes(): Promise<NodeView[]>;
  intentions(): Promise<{ intentions: Intention[]; defaultAction: IntentionAction }>;
  metrics(): Promise<MetricsOverview>;
  /** Live config entries (traffic policy); absent on sources that cannot read them. */
  configEntries?(): Promise<ConfigEntry[]>;
  /** The registries serving the mesh (several on etcd); absent on sources that cannot say. */
  peers?(): Promise<RegistryPeer[]>;
  /** This host's agent, when there is one to ask; undefined otherwise. */
  agent(): Promise<AgentInfo | undefined>;
  close(): void;
}

export interface MeshSnapshot {
  source: string;
  /** ISO time this snapshot was read; views measure ages and expiries against it. */
  fetchedAt: string;
  registry: RegistryStatus;
  /** Every registry serving the mesh; empty when unknown (older registry). */
  registries?: RegistryPeer[];
  services: ServiceSummary[];
  instances: InstanceView[];
  nodes: NodeView[];
  intentions: Intention[];
  defaultAction: IntentionAction;
  /** null while the registry serves no metrics (older registry, or no agent reported yet). */
  metrics: MetricsOverview | null;
  /** Why metrics are missing, when they are. */
  metricsProblem: string | null;
  /** Live config entries (routes, splits, subsets for the service detail); empty when none or unreadable. */
  config?: ConfigEntry[];
  agent: AgentInfo | null;
}

/**
 * One round of reads. The catalog reads must all succeed (otherwise the registry counts as
 * unreachable and the caller keeps its last snapshot); metrics are optional, so a registry
 * without the metrics endpoint still gives a full dashboard.
 */
export async function gatherMesh(source: MeshDataSource, now: () => Date = () => new Date()): Promise<MeshSnapshot> {
  const metrics = source.metrics().then(
    (m) => ({ m, problem: null }),
    (e: unknown) => ({ m: null, problem: metricsProblem(e) }),
  );
  const agent = source.agent();
  const peers = (source.peers?.() ?? Promise.resolve([])).catch(() => [] as RegistryPeer[]);
  // Optional like the metrics: a registry (or agent) from before config entries still gives a full dashboard.
  const config = (source.configEntries?.() ?? Promise.resolve([])).catch(() => [] as ConfigEntry[]);
  // Settle the optional reads even when a required one fails, so none is left rejecting unobserved.
  agent.catch(() => undefined);
  const [registry, services, instances, nodes, intentions] = await Promise.all([
    source.status(),
    source.services(),
    source.instances(),
    source.nodes(),
    source.intentions(),
  ]).catch(async (e: unknown) => {
    await metrics;
    throw toMeshError(e, 'MESH_ERR_UNAVAILABLE');
  });
  const [met, ag, registries, entries] = await Promise.all([metrics, agent, peers, config]);
  return {
    source: source.label,
    fetchedAt: now().toISOString(),
    registry,
    registries,
    services: [...services].sort((a, b) => a.name.localeCompare(b.name)),
    instances,
    nodes: [...nodes].sort((a, b) => a.name.localeCompare(b.name)),
    intentions: intentions.intentions,
    defaultAction: intentions.defaultAction,
    metrics: met.m,
    metricsProblem: met.problem,
    config: entries,
    agent: ag ?? null,
  };
}

function metricsProblem(e: unknown): string {
  if (e instanceof MeshError && e.code === 'MESH_ERR_NOT_FOUND') return 'not available';
  return `not available (${e instanceof Error ? e.message : String(e)})`;
}
