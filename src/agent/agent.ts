/**
 * The host agent: owns this host's registrations (from the CLI and from definition files),
 * runs their health checks, keeps the registry in step (anti-entropy + lease), and serves
 * the local admin API the CLI uses. Proxies are supervised by `proxies/` (data plane).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { MeshError } from '../errors/index.js';
import { serviceRegistrationSchema, type CheckStatus, type ServiceRegistration } from '../api/schemas.js';
import { certExpiry, createKeyAndCsr, nodeId } from '../ca/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { createLogger } from '../util/log.js';
import { loadAgentConfig, type AgentConfig, type AgentPaths } from './config.js';
import { LocalState, instanceId, type LocalService, type ServiceSource } from './state.js';
import { RegistryLink } from './registry-link.js';
import { RegistrySync } from './sync.js';
import { CheckManager, type CheckStateView } from './checks/index.js';
import { DefinitionSet, DefinitionWatcher, type DefinitionError } from './definitions/index.js';
import { startAdminServer, type AdminServer } from './admin-server.js';
import { ProxyManager } from './proxies/manager.js';
import { allocateMeshPort } from './proxies/ports.js';
import { MetricsReporter } from './metrics/reporter.js';
import { startPrometheus, type PrometheusServer } from './metrics/prometheus.js';

export interface AgentOptions {
  dataDir: string;
  log?: Logger;
  /** Prometheus listener (ADDR:PORT); overrides the config's metricsBind. */
  metricsBind?: string;
  /** Access logs for every sidecar (a directory or "stdout"); overrides the config's accessLogs. */
  accessLogs?: string;
  /** Overrides for tests. */
  fullSyncIntervalMs?: number;
}

export interface ServiceView {
  id: string;
  name: string;
  port: number;
  address?: string;
  protocol: string;
  tags: string[];
  weight: number;
  upstreams: ServiceRegistration['upstreams'];
  source: ServiceSource;
  status: CheckStatus;
  checks: CheckStateView[];
}

export interface DefinitionProblem {
  file: string;
  message: string;
  line?: number;
  column?: number;
}

const RANK: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

export class Agent {
  readonly config: AgentConfig;
  readonly paths: AgentPaths;
  readonly log: Logger;
  private readonly state: LocalState;
  private readonly link: RegistryLink;
  private readonly checks: CheckManager;
  private readonly sync: RegistrySync;
  private readonly definitions = new DefinitionSet();
  private watcher: DefinitionWatcher | undefined;
  private admin: AdminServer | undefined;
  private readonly problems = new Map<string, DefinitionError>();
  readonly proxies: ProxyManager;
  private readonly metrics: MetricsReporter;
  private prometheus: PrometheusServer | undefined;
  private readonly metricsBind: string | undefined;
  private readonly startedAt = new Date();
  /** Serialises changes to local registrations (CLI and file events). */
  private changing: Promise<unknown> = Promise.resolve();

  private constructor(config: AgentConfig, paths: AgentPaths, log: Logger, opts: AgentOptions) {
    this.config = config;
    this.paths = paths;
    this.log = log;
    this.state = new LocalState(paths.state);
    this.link = new RegistryLink(config, paths);
    this.checks = new CheckManager({ logger: log });
    this.sync = new RegistrySync({
      link: this.link,
      state: this.state,
      nodeName: config.nodeName,
      advertise: config.advertise,
      leaseTtlSeconds: config.leaseTtlSeconds,
      checkState: (inst, check) => {
        const s = this.checks.states(inst).find((c) => c.checkId === check);
        return s && { status: s.status, output: s.output };
      },
      log,
      afterSync: () => this.renewNodeCertificateIfDue(),
      ...(opts.fullSyncIntervalMs ? { fullSyncIntervalMs: opts.fullSyncIntervalMs } : {}),
    });
    this.proxies = new ProxyManager({
      link: this.link,
      log,
      trustDomain: config.trustDomain,
      advertise: config.advertise,
      dataDir: paths.dataDir,
      // The proxy is this same CLI (`meshctl proxy run`), launched the way the agent was.
      cliEntry: process.argv[1] ?? 'meshctl',
      ...((opts.accessLogs ?? config.accessLogs) ? { accessLogs: opts.accessLogs ?? config.accessLogs } : {}),
    });
    this.metrics = new MetricsReporter({
      node: config.nodeName,
      link: this.link,
      source: { collect: () => this.proxies.collectMetrics() },
      log,
    });
    this.metricsBind = opts.metricsBind ?? config.metricsBind;
    this.checks.on('change', (ch) => {
      this.log.info({ service: ch.instanceId, check: ch.checkId, from: ch.previous, to: ch.status }, 'check changed');
      void this.sync.reportCheck(ch.instanceId, ch.checkId, { status: ch.status, output: ch.output });
    });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const { config, paths } = await loadAgentConfig(opts.dataDir);
    const log = opts.log ?? createLogger('agent');
    const agent = new Agent(config, paths, log, opts);
    await agent.boot();
    return agent;
  }

  private async boot(): Promise<void> {
    await this.state.load();
    await this.link.load();
    for (const svc of this.state.list()) this.checks.set(svc.id, svc.registration.checks);
    this.admin = await startAdminServer(this, this.config.socketPath, this.log);
    this.sync.start();
    await this.proxies.start();
    await this.proxies.update(this.state.list());
    this.metrics.start();
    if (this.metricsBind) {
      this.prometheus = await startPrometheus(this.metricsBind, () => this.metrics.latest());
      this.log.info({ url: this.prometheus.url }, 'serving Prometheus metrics');
    }
    this.watcher = new DefinitionWatcher({ dir: this.config.servicesDir, log: this.log });
    this.watcher.on('change', (ev) => {
      void this.serial(() => this.applyDefinitionEvent(ev));
    });
    this.watcher.on('directory', ({ dir, exists }) =>
      this.log.info(
        { dir, exists },
        exists ? 'watching service definitions' : 'service definition directory is missing; watching for it',
      ),
    );
    this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'definition watcher error'));
    await this.watcher.start();
    await this.serial(() => this.reconcileFileServices());
    this.log.info(
      { node: this.config.nodeName, socket: this.config.socketPath, services: this.state.list().length },
      'agent started',
    );
  }

  /** Stops without deregistering anything: a restart must not flap the catalog. */
  async stop(): Promise<void> {
    await this.watcher?.close();
    this.metrics.stop();
    await this.prometheus?.close();
    await this.proxies.stop();
    await this.admin?.close();
    await this.sync.stop();
    await this.checks.stop();
    this.link.close();
  }

  /** SIGHUP: re-read agent.json (registry addresses) and the certificates, then resync. */
  async reload(): Promise<void> {
    const { config } = await loadAgentConfig(this.paths.dataDir);
    if (JSON.stringify(config.registries) !== JSON.stringify(this.config.registries)) {
      this.log.info({ registries: config.registries }, 'registry addresses changed');
      this.link.setRegistries(config.registries);
    }
    await this.link.load();
    await this.sync.syncNow();
    this.log.info('reloaded');
  }

  // ---- registrations ------------------------------------------------------------------------

  async register(input: unknown, source: ServiceSource = { kind: 'cli' }): Promise<{ id: string; synced: boolean }> {
    const parsed = serviceRegistrationSchema.safeParse(input);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid service: ${i.path.join('.') || '(root)'}: ${i.message}`);
    }
    const reg = parsed.data;
    const id = instanceId(reg);
    await this.serial(async () => {
      const existing = this.state.get(id);
      if (existing && existing.source.kind === 'file' && source.kind === 'cli') {
        throw new MeshError('MESH_ERR_CONFLICT', `service '${id}' is defined in ${existing.source.file}`, {
          hint: 'Edit or delete that file instead.',
        });
      }
      this.assertPortsFree(reg, id);
      await this.state.upsert({ id, registration: await this.withMeshPort(reg, id), source });
      this.checks.set(id, reg.checks);
    });
    const synced = await this.sync.syncNow();
    await this.proxies.update(this.state.list());
    return { id, synced };
  }

  async deregister(id: string): Promise<{ id: string; synced: boolean }> {
    await this.serial(async () => {
      const existing = this.state.get(id);
      if (!existing)
        throw new MeshError('MESH_ERR_NOT_FOUND', `no service '${id}' is registered on this host`, {
          hint: 'See `meshctl services`.',
        });
      if (existing.source.kind === 'file') {
        throw new MeshError('MESH_ERR_CONFLICT', `service '${id}' is defined in ${existing.source.file}`, {
          hint: 'Delete that file to deregister it.',
        });
      }
      await this.state.remove(id);
      this.checks.remove(id);
    });
    const synced = await this.sync.syncNow();
    await this.proxies.update(this.state.list());
    return { id, synced };
  }

  ttlUpdate(checkId: string, status: CheckStatus, note: string): CheckStateView {
    return this.checks.ttlUpdate(checkId, status, note);
  }

  /** `meshctl agent leave`: everything of this host leaves the catalog, and the agent stops. */
  async leave(): Promise<void> {
    await this.serial(async () => {
      await this.link.call((c) => c.leave(this.config.nodeName));
      await this.state.clear();
      await this.proxies.stop({ shutdownProxies: true });
    });
  }

  services(): ServiceView[] {
    return this.state.list().map((s) => this.view(s));
  }

  definitionProblems(): DefinitionProblem[] {
    return [...this.problems].map(([file, e]) => ({
      file,
      message: e.message,
      ...(e.line ? { line: e.line } : {}),
      ...(e.column ? { column: e.column } : {}),
    }));
  }

  self(): Record<string, unknown> {
    return {
      node: this.config.nodeName,
      advertise: this.config.advertise,
      trustDomain: this.config.trustDomain,
      registries: this.config.registries,
      socket: this.config.socketPath,
      servicesDir: this.config.servicesDir,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      sync: this.sync.status(),
      services: this.state.list().length,
    };
  }

  /** A read from the registry with this node's identity (for `meshctl status` on this host). */
  registryGet(
    path: string,
    query: Record<string, string>,
  ): Promise<{ body: unknown; headers: Record<string, string | string[] | undefined> }> {
    return this.link.call((c) => c.http.get<unknown>(path, { query }));
  }

  async nodeCertificateExpiry(): Promise<string> {
    return certExpiry(await readFile(this.paths.nodeCert, 'utf8')).toISOString();
  }

  // ---- internals ------------------------------------------------------------------------------

  private view(s: LocalService): ServiceView {
    const checks = this.checks.states(s.id);
    let status: CheckStatus = 'passing';
    for (const c of checks) if (RANK[c.status] > RANK[status]) status = c.status;
    const r = s.registration;
    return {
      id: s.id,
      name: r.name,
      port: r.port,
      ...(r.address ? { address: r.address } : {}),
      protocol: r.protocol,
      tags: r.tags,
      weight: r.weight,
      upstreams: r.upstreams,
      source: s.source,
      status,
      checks,
    };
  }

  /** Two local services must not claim the same upstream listener port. */
  private assertPortsFree(reg: ServiceRegistration, id: string): void {
    for (const other of this.state.list()) {
      if (other.id === id) continue;
      for (const u of reg.upstreams) {
        if (
          other.registration.upstreams.some((o) => o.localPort === u.localPort && o.localAddress === u.localAddress)
        ) {
          throw new MeshError(
            'MESH_ERR_CONFLICT',
            `upstream port ${u.localPort} is already used by service '${other.id}' on this host`,
            { hint: 'Pick another local port for the upstream.' },
          );
        }
      }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.changing.catch(() => undefined).then(fn);
    this.changing = next.catch(() => undefined);
    return next;
  }

  private async applyDefinitionEvent(ev: Parameters<DefinitionSet['apply']>[0]): Promise<void> {
    const changes = this.definitions.apply(ev);
    if (ev.type !== 'invalid') this.problems.delete(ev.file);
    for (const inv of changes.invalid) {
      this.problems.set(inv.file, inv.error);
      this.log.warn(
        { file: inv.file, line: inv.error.line, err: inv.error.message },
        'invalid service definition; keeping the last good registration from it',
      );
    }
    let changed = false;
    for (const d of changes.deregister) {
      const cur = this.state.get(d.id);
      if (cur?.source.kind === 'file') {
        await this.state.remove(d.id);
        this.checks.remove(d.id);
        changed = true;
      }
    }
    for (const reg of changes.register) {
      const id = instanceId(reg);
      const file = this.definitions.fileOf(id) ?? ev.file;
      const cur = this.state.get(id);
      if (cur && cur.source.kind === 'cli') {
        this.problems.set(file, {
          message: `service '${id}' is already registered from the CLI; deregister it there first`,
        });
        continue;
      }
      await this.state.upsert({ id, registration: await this.withMeshPort(reg, id), source: { kind: 'file', file } });
      this.checks.set(id, reg.checks);
      changed = true;
    }
    if (changed) void this.sync.syncNow().then(() => this.proxies.update(this.state.list()));
  }

  /**
   * After the first scan: file-defined services whose file is gone (or no longer defines
   * them) while the agent was down leave; those of a file that is now broken stay.
   */
  private async reconcileFileServices(): Promise<void> {
    const files = new Map(this.definitions.files().map((f) => [f.file, f]));
    let changed = false;
    for (const svc of this.state.list()) {
      if (svc.source.kind !== 'file') continue;
      const f = files.get(svc.source.file);
      const keep = f !== undefined && (f.state !== 'ok' || f.services.includes(svc.id));
      if (!keep) {
        await this.state.remove(svc.id);
        this.checks.remove(svc.id);
        changed = true;
      }
    }
    if (changed) void this.sync.syncNow().then(() => this.proxies.update(this.state.list()));
  }

  /**
   * A service with a sidecar needs a mesh port: the one it asked for, the one it already had
   * (stable across restarts and file edits), or a free one from the range.
   */
  private async withMeshPort(reg: ServiceRegistration, id: string): Promise<ServiceRegistration> {
    if (!reg.proxy || reg.meshPort !== undefined) return reg;
    const had = this.state.get(id)?.registration.meshPort;
    if (had !== undefined) return { ...reg, meshPort: had };
    const taken = new Set(
      this.state.list().flatMap((s) => (s.registration.meshPort === undefined ? [] : [s.registration.meshPort])),
    );
    const port = await allocateMeshPort(this.config.advertise, taken);
    if (port === undefined)
      throw new MeshError('MESH_ERR_CONFLICT', 'no free mesh port left in 21000-21999 on this host', {
        hint: 'Give the service a --mesh-port, or deregister unused services.',
      });
    return { ...reg, meshPort: port };
  }

  private async renewNodeCertificateIfDue(): Promise<void> {
    const pem = await readFile(this.paths.nodeCert, 'utf8');
    const { X509Certificate } = await import('node:crypto');
    const x = new X509Certificate(pem);
    const from = Date.parse(x.validFrom);
    const to = Date.parse(x.validTo);
    if (Date.now() < from + (to - from) / 2) return;
    const { keyPem, csrPem } = await createKeyAndCsr({
      spiffeId: nodeId(this.config.trustDomain, this.config.nodeName),
    });
    const res = await this.link.call((c) => c.renewNodeCertificate(this.config.nodeName, csrPem));
    await writeFileAtomic(this.paths.nodeKey, keyPem, 0o600);
    await writeFileAtomic(this.paths.nodeCert, res.certificate, 0o600);
    await writeFileAtomic(this.paths.roots, res.roots.join(''), 0o600);
    await this.link.load();
    this.log.info({ notAfter: res.notAfter }, 'renewed the node certificate');
  }
}
