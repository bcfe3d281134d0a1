/**
 * The two ways the dashboard reaches the registry's read API: directly with the admin token,
 * or through this host's agent (`/v1/agent/registry/...` on its unix socket, with the node's
 * identity, so no token is needed on the host). Both read the same paths with a short per-request
 * timeout: a registry that stops answering must turn the header red within seconds, not after the
 * client's default 15 s.
 */
import { HttpClient } from '../../api/http-client.js';
import type { RegistryClient, RegistryPeer, RegistryStatus } from '../../api/registry-client.js';
import type { InstanceView, Intention, IntentionAction, NodeView, ServiceSummary } from '../../api/schemas.js';
import type { ConfigEntry, StoredConfigEntry } from '../../api/config-entries.js';
import type { MetricsOverview } from '../../api/metrics.js';
import type { AgentInfo, MeshDataSource } from './source.js';

export const DEFAULT_READ_TIMEOUT_MS = 4_000;

abstract class HttpMeshSource implements MeshDataSource {
  abstract readonly label: string;

  readonly #prefix: string;

  constructor(
    protected readonly http: HttpClient,
    /** `/v1/` on the registry, `/v1/agent/registry/` on the agent. */
    prefix: string,
    protected readonly timeoutMs: number,
  ) {
    this.#prefix = prefix;
  }

  protected async read<T>(path: string): Promise<T> {
    return (await this.http.get<T>(`${this.#prefix}${path}`, { timeoutMs: this.timeoutMs })).body;
  }

  status(): Promise<RegistryStatus> {
    return this.read<RegistryStatus>('status');
  }
  async services(): Promise<ServiceSummary[]> {
    return (await this.read<{ services: ServiceSummary[] }>('catalog/services')).services;
  }
  async instances(): Promise<InstanceView[]> {
    return (await this.read<{ instances: InstanceView[] }>('catalog/instances')).instances;
  }
  async nodes(): Promise<NodeView[]> {
    return (await this.read<{ nodes: NodeView[] }>('catalog/nodes')).nodes;
  }
  async intentions(): Promise<{ intentions: Intention[]; defaultAction: IntentionAction }> {
    const r = await this.read<{ intentions: Intention[]; defaultAction: IntentionAction }>('intentions');
    return { intentions: r.intentions, defaultAction: r.defaultAction };
  }
  metrics(): Promise<MetricsOverview> {
    return this.read<MetricsOverview>('metrics/services');
  }
  async configEntries(): Promise<ConfigEntry[]> {
    return (await this.read<{ entries: StoredConfigEntry[] }>('config')).entries.map((e) => e.entry);
  }
  async peers(): Promise<RegistryPeer[]> {
    return (await this.read<{ peers: RegistryPeer[] }>('status/peers')).peers;
  }
  abstract agent(): Promise<AgentInfo | undefined>;
  abstract close(): void;
}

/** Reads `/v1/agent/self` and keeps only what the header needs. */
async function readAgentSelf(http: HttpClient, timeoutMs: number): Promise<AgentInfo> {
  const self = (await http.get<Record<string, unknown>>('/v1/agent/self', { timeoutMs })).body;
  const sync = (self.sync ?? {}) as { reachable?: unknown };
  const info: AgentInfo = { node: String(self.node ?? '?'), registryReachable: sync.reachable === true };
  if (typeof self.nodeCertNotAfter === 'string') info.nodeCertNotAfter = self.nodeCertNotAfter;
  if (Array.isArray(self.sidecarProblems)) {
    const problems = (self.sidecarProblems as Array<{ service?: unknown; problem?: unknown }>).flatMap((p) =>
      typeof p.service === 'string' && typeof p.problem === 'string'
        ? [{ service: p.service, problem: p.problem }]
        : [],
    );
    if (problems.length > 0) info.sidecarProblems = problems;
  }
  return info;
}

function agentHttp(socketPath: string, timeoutMs: number): HttpClient {
  return new HttpClient({ baseUrl: 'http://agent', socketPath, timeoutMs });
}

/** Straight to the registry. A local agent, when given, only adds this node's certificate expiry. */
export class RegistrySource extends HttpMeshSource {
  readonly label: string;
  readonly #agentHttp: HttpClient | undefined;

  readonly #client: RegistryClient;

  constructor(client: RegistryClient, opts: { baseUrl: string; agentSocket?: string; timeoutMs?: number }) {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    super(client.http, '/v1/', timeoutMs);
    this.#client = client;
    this.label = `registry ${opts.baseUrl}`;
    this.#agentHttp = opts.agentSocket === undefined ? undefined : agentHttp(opts.agentSocket, timeoutMs);
  }

  async agent(): Promise<AgentInfo | undefined> {
    if (!this.#agentHttp) return undefined;
    // Best effort: the registry is the source here, so a stopped local agent hides one line, no more.
    return readAgentSelf(this.#agentHttp, this.timeoutMs).catch(() => undefined);
  }

  close(): void {
    this.#client.close();
    this.#agentHttp?.close();
  }
}

/** Through this host's agent: works on any mesh host without the admin token. */
export class AgentSource extends HttpMeshSource {
  readonly label: string;

  constructor(
    readonly socketPath: string,
    opts: { timeoutMs?: number } = {},
  ) {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    super(agentHttp(socketPath, timeoutMs), '/v1/agent/registry/', timeoutMs);
    this.label = `agent ${socketPath}`;
  }

  agent(): Promise<AgentInfo> {
    return readAgentSelf(this.http, this.timeoutMs);
  }

  close(): void {
    this.http.close();
  }
}
