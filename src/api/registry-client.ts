/** Typed calls to the registry API, shared by the CLI and the agent. */
import { HttpClient, type HttpClientOptions } from './http-client.js';
import type {
  InstanceView,
  Intention,
  IntentionAction,
  JoinResponse,
  NodeRecord,
  NodeView,
  ServiceInstance,
  ServiceRegistration,
  SignResponse,
  TokenInfo,
  CheckStatus,
  ServiceSummary,
} from './schemas.js';
import type { IntentionDecision } from './intentions.js';
import type { ApplyResult, ConfigHistoryRecord, ConfigKind, StoredConfigEntry } from './config-entries.js';
import type { MetricsOverview, NodeMetricsReport } from './metrics.js';

export interface RegistryStatus {
  trustDomain: string;
  revision: number;
  store: string;
  defaultIntention: IntentionAction;
  caFingerprint: string;
  caNotAfter: string;
  blockingQueries: number;
  leaseTtlSeconds: number;
}

export interface TokenCreateScope {
  kind?: 'join' | 'admin';
  services?: string[];
  anyService?: boolean;
  uses?: number;
  replaceNode?: string;
}

/** A node as `GET /v1/nodes/:node` shows it (`meshctl node show`). */
export interface NodeDetail extends Omit<NodeRecord, 'authorization'> {
  authorization: { services: string[]; anyService: boolean };
  alive: boolean;
  lastSeen?: string;
  instances: Array<{ id: string; name: string; port: number }>;
  /** Certificates issued to the node that have not expired. */
  certificates: number;
}

export interface RevokedCertificate {
  serial: string;
  node: string;
  kind: 'node' | 'leaf';
  notAfter: string;
}

/** One registry serving the mesh (`/v1/status/peers`). */
export interface RegistryPeer {
  id: string;
  url: string;
  startedAt: string;
  store: string;
}

export interface Blocking {
  index?: number;
  wait?: string;
  signal?: AbortSignal;
}

const enc = encodeURIComponent;

/** Errors after which another registry of the mesh may answer (down, too slow, or no quorum). */
export const FAILOVER_CODES: ReadonlySet<string> = new Set([
  'MESH_ERR_UNAVAILABLE',
  'MESH_ERR_TIMEOUT',
  'MESH_ERR_STORE_UNAVAILABLE',
]);

export class RegistryClient {
  readonly http: HttpClient;
  /** The registry this client asks, as given. */
  readonly baseUrl: string;

  constructor(opts: HttpClientOptions) {
    this.http = new HttpClient(opts);
    this.baseUrl = opts.baseUrl;
  }

  close(): void {
    this.http.close();
  }

  #blocking(b: Blocking | undefined): {
    query: Record<string, string | number | undefined>;
    timeoutMs?: number;
    signal?: AbortSignal;
  } {
    if (!b || b.index === undefined) return { query: {} };
    // The request may legitimately hang for `wait`; give the socket a margin past it.
    const out: { query: Record<string, string | number | undefined>; timeoutMs?: number; signal?: AbortSignal } = {
      query: { index: b.index, wait: b.wait ?? '60s' },
      timeoutMs: 10 * 60_000 + 15_000,
    };
    if (b.signal) out.signal = b.signal;
    return out;
  }

  async health(): Promise<{ status: string }> {
    return (await this.http.get<{ status: string }>('/v1/health')).body;
  }
  async status(): Promise<RegistryStatus> {
    return (await this.http.get<RegistryStatus>('/v1/status')).body;
  }
  /** Every registry serving this mesh; `self` is the id of the one answering. */
  async peers(): Promise<{ self: string; peers: RegistryPeer[] }> {
    return (await this.http.get<{ self: string; peers: RegistryPeer[] }>('/v1/status/peers')).body;
  }

  async join(body: {
    nodeName: string;
    address: string;
    csr: string;
    meta?: Record<string, string>;
  }): Promise<JoinResponse> {
    return (await this.http.post<JoinResponse>('/v1/join', body)).body;
  }
  async renewNodeCertificate(
    node: string,
    csr: string,
  ): Promise<{ certificate: string; roots: string[]; notAfter: string }> {
    return (
      await this.http.post<{ certificate: string; roots: string[]; notAfter: string }>(
        `/v1/nodes/${enc(node)}/certificate`,
        { csr },
      )
    ).body;
  }
  async updateNode(
    node: string,
    address: string,
    meta: Record<string, string> = {},
  ): Promise<{ revision: number; changed: boolean }> {
    return (await this.http.put<{ revision: number; changed: boolean }>(`/v1/nodes/${enc(node)}`, { address, meta }))
      .body;
  }
  async nodeInstances(node: string): Promise<{ revision: number; instances: ServiceInstance[] }> {
    return (await this.http.get<{ revision: number; instances: ServiceInstance[] }>(`/v1/catalog/node/${enc(node)}`))
      .body;
  }
  async heartbeat(
    node: string,
    ttlSeconds?: number,
  ): Promise<{ leaseId: number; ttlSeconds: number; renewed: boolean }> {
    return (
      await this.http.put<{ leaseId: number; ttlSeconds: number; renewed: boolean }>(
        `/v1/nodes/${enc(node)}/alive`,
        ttlSeconds === undefined ? {} : { ttlSeconds },
      )
    ).body;
  }
  async node(name: string): Promise<NodeDetail> {
    return (await this.http.get<{ node: NodeDetail }>(`/v1/nodes/${enc(name)}`)).body.node;
  }
  async authorizeNode(
    name: string,
    change: { action: 'allow' | 'deny'; services?: string[]; anyService?: boolean },
  ): Promise<{ record: NodeRecord; deregistered: string[]; revoked: number }> {
    return (
      await this.http.post<{ record: NodeRecord; deregistered: string[]; revoked: number }>(
        `/v1/nodes/${enc(name)}/authorization`,
        change,
      )
    ).body;
  }
  /** The admin removes a node; its certificates are revoked. */
  async removeNode(name: string): Promise<{ revision: number; revoked: number }> {
    return (await this.http.delete<{ revision: number; revoked: number }>(`/v1/nodes/${enc(name)}`)).body;
  }
  async revoked(b?: Blocking): Promise<{ revision: number; revoked: RevokedCertificate[] }> {
    return (
      await this.http.get<{ revision: number; revoked: RevokedCertificate[] }>('/v1/ca/revoked', this.#blocking(b))
    ).body;
  }
  async leave(node: string): Promise<{ revision: number }> {
    return (await this.http.delete<{ revision: number }>(`/v1/nodes/${enc(node)}`)).body;
  }

  async services(b?: Blocking): Promise<{ revision: number; services: ServiceSummary[] }> {
    return (
      await this.http.get<{ revision: number; services: ServiceSummary[] }>('/v1/catalog/services', this.#blocking(b))
    ).body;
  }
  async instances(
    service: string,
    opts: { healthyOnly?: boolean } & Blocking = {},
  ): Promise<{ revision: number; instances: InstanceView[] }> {
    const o = this.#blocking(opts);
    if (opts.healthyOnly) o.query.healthy = 'true';
    return (
      await this.http.get<{ revision: number; instances: InstanceView[] }>(`/v1/catalog/service/${enc(service)}`, o)
    ).body;
  }
  async allInstances(b?: Blocking): Promise<{ revision: number; instances: InstanceView[] }> {
    return (
      await this.http.get<{ revision: number; instances: InstanceView[] }>('/v1/catalog/instances', this.#blocking(b))
    ).body;
  }
  async nodes(b?: Blocking): Promise<{ revision: number; nodes: NodeView[] }> {
    return (await this.http.get<{ revision: number; nodes: NodeView[] }>('/v1/catalog/nodes', this.#blocking(b))).body;
  }
  async register(
    service: ServiceRegistration | Record<string, unknown>,
    node?: string,
  ): Promise<{ revision: number; instance: ServiceInstance }> {
    return (
      await this.http.put<{ revision: number; instance: ServiceInstance }>(
        '/v1/catalog/register',
        node === undefined ? { service } : { node, service },
      )
    ).body;
  }
  async deregister(node: string, id: string): Promise<{ revision: number; deleted: boolean }> {
    return (
      await this.http.delete<{ revision: number; deleted: boolean }>(`/v1/catalog/node/${enc(node)}/service/${enc(id)}`)
    ).body;
  }
  async updateCheck(
    node: string,
    id: string,
    check: string,
    status: CheckStatus,
    output = '',
  ): Promise<{ revision: number; changed: boolean }> {
    return (
      await this.http.put<{ revision: number; changed: boolean }>(
        `/v1/health/node/${enc(node)}/service/${enc(id)}/check/${enc(check)}`,
        { status, output },
      )
    ).body;
  }

  /** The instance's sidecar drains (critical until it serves again) or serves again. */
  async setDraining(node: string, id: string, draining: boolean): Promise<{ revision: number; changed: boolean }> {
    return (
      await this.http.put<{ revision: number; changed: boolean }>(
        `/v1/health/node/${enc(node)}/service/${enc(id)}/draining`,
        { draining },
      )
    ).body;
  }

  async intentions(
    b?: Blocking,
  ): Promise<{ revision: number; intentions: Intention[]; defaultAction: IntentionAction }> {
    return (
      await this.http.get<{ revision: number; intentions: Intention[]; defaultAction: IntentionAction }>(
        '/v1/intentions',
        this.#blocking(b),
      )
    ).body;
  }
  async putIntention(
    source: string,
    destination: string,
    action: IntentionAction,
    description = '',
  ): Promise<{ revision: number; intention: Intention }> {
    return (
      await this.http.put<{ revision: number; intention: Intention }>('/v1/intentions', {
        source,
        destination,
        action,
        description,
      })
    ).body;
  }
  async deleteIntention(source: string, destination: string): Promise<{ revision: number }> {
    return (await this.http.delete<{ revision: number }>(`/v1/intentions/${enc(source)}/${enc(destination)}`)).body;
  }
  async checkIntention(source: string, destination: string): Promise<IntentionDecision & { revision: number }> {
    return (
      await this.http.get<IntentionDecision & { revision: number }>('/v1/intentions/check', {
        query: { source, destination },
      })
    ).body;
  }

  /** Config entries (`meshctl get config`); a blocking query with `b` (agents watch them). */
  async configEntries(
    filter: { kind?: ConfigKind; name?: string } = {},
    b?: Blocking,
  ): Promise<{ revision: number; entries: StoredConfigEntry[] }> {
    const req = this.#blocking(b);
    return (
      await this.http.get<{ revision: number; entries: StoredConfigEntry[] }>('/v1/config', {
        ...req,
        query: { ...req.query, kind: filter.kind, name: filter.name },
      })
    ).body;
  }
  /** Applies entries all or nothing; `labels[i]` names document i in errors (`api.yaml document 2`). */
  async applyConfig(entries: unknown[], labels: string[], dryRun: boolean): Promise<ApplyResult> {
    return (
      await this.http.post<ApplyResult>(
        '/v1/config/apply',
        { entries, labels },
        { query: { dry_run: dryRun ? 'true' : undefined } },
      )
    ).body;
  }
  async deleteConfig(kind: ConfigKind, name: string): Promise<{ revision: number }> {
    return (await this.http.delete<{ revision: number }>(`/v1/config/${enc(kind)}/${enc(name)}`)).body;
  }
  async configHistory(
    filter: { kind?: ConfigKind; name?: string } = {},
  ): Promise<{ revision: number; changes: ConfigHistoryRecord[] }> {
    return (
      await this.http.get<{ revision: number; changes: ConfigHistoryRecord[] }>('/v1/config/history', {
        query: { kind: filter.kind, name: filter.name },
      })
    ).body;
  }

  async roots(): Promise<{
    trustDomain: string;
    roots: Array<{ pem: string; fingerprint: string; notAfter: string }>;
  }> {
    return (
      await this.http.get<{
        trustDomain: string;
        roots: Array<{ pem: string; fingerprint: string; notAfter: string }>;
      }>('/v1/ca/roots')
    ).body;
  }
  async sign(service: string, csr: string, ttlSeconds?: number): Promise<SignResponse> {
    return (
      await this.http.post<SignResponse>(
        '/v1/ca/sign',
        ttlSeconds === undefined ? { service, csr } : { service, csr, ttlSeconds },
      )
    ).body;
  }

  async metricsOverview(): Promise<MetricsOverview> {
    return (await this.http.get<MetricsOverview>('/v1/metrics/services')).body;
  }
  async reportMetrics(node: string, report: NodeMetricsReport): Promise<void> {
    await this.http.put(`/v1/metrics/node/${enc(node)}`, report);
  }

  async tokens(): Promise<TokenInfo[]> {
    return (await this.http.get<{ tokens: TokenInfo[] }>('/v1/tokens')).body.tokens;
  }
  async createToken(
    description = '',
    ttlSeconds?: number,
    scope: TokenCreateScope = {},
  ): Promise<{ token: string; info: TokenInfo }> {
    const body = {
      kind: scope.kind ?? 'join',
      description,
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      ...(scope.services && scope.services.length > 0 ? { services: scope.services } : {}),
      ...(scope.anyService ? { anyService: true } : {}),
      ...(scope.uses === undefined ? {} : { uses: scope.uses }),
      ...(scope.replaceNode ? { replaceNode: scope.replaceNode } : {}),
    };
    return (await this.http.post<{ token: string; info: TokenInfo }>('/v1/tokens', body)).body;
  }
  async revokeToken(id: string): Promise<TokenInfo> {
    return (await this.http.delete<{ token: TokenInfo }>(`/v1/tokens/${enc(id)}`)).body.token;
  }
}
