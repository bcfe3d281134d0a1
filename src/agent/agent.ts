/**
 * The host agent: owns this host's registrations (from the CLI and from definition files),
 * runs their health checks, keeps the registry in step (anti-entropy + lease), and serves
 * the local admin API the CLI uses. Proxies are supervised by `proxies/` (data plane).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../util/log.js';
import { MeshError } from '../errors/index.js';
import type { CheckStatus } from '../api/schemas.js';
import { certExpiry, createKeyAndCsr, nodeId, renewalDue } from '../ca/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { createLogger } from '../util/log.js';
import {
  loadAgentConfig,
  runtimeConfig,
  type AgentPaths,
  type AgentRuntimeConfig,
  type AgentStartFlags,
} from './config.js';
import { LocalState } from './state.js';
import { RegistryLink } from './registry-link.js';
import { RegistrySync } from './sync.js';
import { CheckManager, type CheckStateView } from './checks/index.js';
import { DefinitionWatcher } from './definitions/index.js';
import { startAdminServer, type AdminServer } from './admin-server.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import type {
  AgentAdminApi,
  DefinitionProblem,
  RegisterOptions,
  RegistrationResult,
  RegistryRead,
  ServiceView,
} from './admin-api.js';
import { Registrations } from './registrations.js';
import { ProxyManager, type ProxyStats } from './proxies/manager.js';
import { MetricsReporter } from './metrics/reporter.js';
import { startPrometheus, type PrometheusServer } from './metrics/prometheus.js';

export interface AgentOptions extends AgentStartFlags {
  dataDir: string;
  log?: Logger;
  /** Overrides for tests. */
  fullSyncIntervalMs?: number;
}

export class Agent implements AgentAdminApi {
  readonly config: AgentRuntimeConfig;
  readonly paths: AgentPaths;
  readonly log: Logger;
  readonly #state: LocalState;
  readonly #link: RegistryLink;
  readonly #checks: CheckManager;
  readonly #sync: RegistrySync;
  readonly #registrations: Registrations;
  #watcher: DefinitionWatcher | undefined;
  #admin: AdminServer | undefined;
  #lock: DataDirLock | undefined;
  readonly proxies: ProxyManager;
  readonly #metrics: MetricsReporter;
  #prometheus: PrometheusServer | undefined;
  readonly #startedAt = new Date();
  readonly #stopWanted: Promise<void>;
  /** The last draining report to the registry per service (true: the registry has it). */
  readonly #withdrawals = new Map<string, Promise<boolean>>();
  #wantStop!: () => void;

  private constructor(config: AgentRuntimeConfig, paths: AgentPaths, log: Logger, opts: AgentOptions) {
    this.config = config;
    this.paths = paths;
    this.log = log;
    this.#state = new LocalState(paths.state);
    this.#link = new RegistryLink(config, paths, this.log);
    this.#checks = new CheckManager({ logger: log });
    this.#sync = new RegistrySync({
      link: this.#link,
      state: this.#state,
      nodeName: config.nodeName,
      advertise: config.advertise,
      leaseTtlSeconds: config.leaseTtlSeconds,
      checkState: (inst, check) => {
        const s = this.#checks.states(inst).find((c) => c.checkId === check);
        return s && { status: s.status, output: s.output };
      },
      draining: (inst) => this.proxies.draining(inst),
      log,
      afterSync: () => this.#renewNodeCertificateIfDue(),
      ...(opts.fullSyncIntervalMs ? { fullSyncIntervalMs: opts.fullSyncIntervalMs } : {}),
    });
    this.proxies = new ProxyManager({
      link: this.#link,
      log,
      trustDomain: config.trustDomain,
      advertise: config.advertise,
      dataDir: paths.dataDir,
      // The proxy is this same CLI (`meshctl proxy run`), launched the way the agent was.
      cliEntry: process.argv[1] ?? 'meshctl',
      ...(config.accessLogs ? { accessLogs: config.accessLogs } : {}),
      drainSeconds: config.drainSeconds,
      agentSocket: config.socketPath,
      onDraining: (id, draining) => this.#withdrawals.set(id, this.#sync.reportDraining(id, draining)),
    });
    this.#metrics = new MetricsReporter({
      node: config.nodeName,
      link: this.#link,
      source: { collect: () => this.proxies.collectMetrics() },
      log,
    });
    this.#registrations = new Registrations({
      state: this.#state,
      checks: this.#checks,
      advertise: config.advertise,
      log,
      execChecks: { enabled: config.execChecks, servicesDir: config.servicesDir },
      publish: async () => {
        const synced = await this.#sync.syncNow();
        await this.proxies.update(this.#state.list());
        return synced;
      },
    });
    this.#stopWanted = new Promise((resolve) => (this.#wantStop = resolve));
    this.#checks.on('change', (ch) => {
      this.log.info({ service: ch.instanceId, check: ch.checkId, from: ch.previous, to: ch.status }, 'check changed');
      void this.#sync.reportCheck(ch.instanceId, ch.checkId, { status: ch.status, output: ch.output });
    });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const { config: file, paths } = await loadAgentConfig(opts.dataDir);
    const config = runtimeConfig(file, opts);
    const log = opts.log ?? createLogger('agent');
    // Before anything reads or writes the state: one agent per data directory.
    const lock = await lockDataDir(paths.dataDir);
    const agent = new Agent(config, paths, log, opts);
    agent.#lock = lock;
    try {
      await agent.#boot();
    } catch (e) {
      // The process ends on this error; the lock goes now so a retry need not judge it stale.
      await lock.release();
      throw e;
    }
    return agent;
  }

  async #boot(): Promise<void> {
    await this.#state.load();
    await this.#link.load();
    for (const svc of this.#state.list()) this.#checks.set(svc.id, this.#registrations.runnableChecks(svc));
    this.#admin = await startAdminServer(this, this.config.socketPath, this.log);
    this.#sync.start();
    await this.proxies.start();
    await this.proxies.update(this.#state.list());
    this.#metrics.start();
    if (this.config.metricsBind) {
      this.#prometheus = await startPrometheus(this.config.metricsBind, () => this.#metrics.latest());
      this.log.info({ url: this.#prometheus.url }, 'serving Prometheus metrics');
    }
    this.#watcher = new DefinitionWatcher({ dir: this.config.servicesDir, log: this.log });
    this.#watcher.on('change', (ev) => {
      void this.#registrations.applyDefinitionEvent(ev);
    });
    this.#watcher.on('directory', ({ dir, exists }) =>
      this.log.info(
        { dir, exists },
        exists ? 'watching service definitions' : 'service definition directory is missing; watching for it',
      ),
    );
    this.#watcher.on('error', (err) => this.log.warn({ err: err.message }, 'definition watcher error'));
    await this.#watcher.start();
    await this.#registrations.reconcileFileServices();
    this.log.info(
      { node: this.config.nodeName, socket: this.config.socketPath, services: this.#state.list().length },
      'agent started',
    );
  }

  /** Stops without deregistering anything: a restart must not flap the catalog. */
  async stop(): Promise<void> {
    await this.#watcher?.close();
    this.#metrics.stop();
    await this.#prometheus?.close();
    await this.proxies.stop();
    await this.#admin?.close();
    await this.#sync.stop();
    await this.#checks.stop();
    this.#link.close();
    await this.#lock?.release();
    this.#lock = undefined;
  }

  /** SIGHUP: re-read agent.json (registry addresses) and the certificates, then resync. */
  async reload(): Promise<void> {
    const { config } = await loadAgentConfig(this.paths.dataDir);
    if (JSON.stringify(config.registries) !== JSON.stringify(this.config.registries)) {
      this.log.info({ registries: config.registries }, 'registry addresses changed');
      this.#link.setRegistries(config.registries);
    }
    await this.#link.load();
    await this.#sync.syncNow();
    this.log.info('reloaded');
  }

  // ---- registrations ------------------------------------------------------------------------

  register(input: unknown, opts: RegisterOptions = {}): Promise<RegistrationResult> {
    return this.#registrations.register(input, { kind: 'cli' }, opts);
  }

  deregister(id: string): Promise<RegistrationResult> {
    return this.#registrations.deregister(id);
  }

  ttlUpdate(checkId: string, status: CheckStatus, note: string): CheckStateView {
    return this.#checks.ttlUpdate(checkId, status, note);
  }

  /** `meshctl agent leave`: everything of this host leaves the catalog, and the agent stops. */
  async leave(): Promise<void> {
    await this.#registrations.exclusive(async () => {
      await this.#link.call((c) => c.leave(this.config.nodeName));
      await this.#state.clear();
      await this.proxies.stop({ shutdownProxies: true });
    });
  }

  /** Asks whoever runs the agent to stop it (see `stopRequested`); the agent never kills its own process. */
  requestStop(): void {
    this.#wantStop();
  }

  /** Resolves when the agent asked to be stopped (after `meshctl agent leave`). */
  stopRequested(): Promise<void> {
    return this.#stopWanted;
  }

  services(): ServiceView[] {
    const problems = this.#sidecarProblems();
    const draining = new Set(this.proxies.proxies().flatMap((p) => (p.draining ? [p.serviceId] : [])));
    const sidecars = new Set(this.proxies.proxies().map((p) => p.serviceId));
    return this.#registrations.services().map((s) => {
      const problem = problems.get(s.id);
      return {
        ...s,
        ...(problem ? { sidecarProblem: problem } : {}),
        ...(draining.has(s.id) ? { draining: true } : {}),
        ...(sidecars.has(s.id) ? { resilience: this.#metrics.resilience(s.id) } : {}),
      };
    });
  }

  /**
   * A sidecar told to stop says so before it drains: the instance goes critical (draining) in
   * the registry, so callers drop it while it still serves. Answers once the registry has it.
   */
  async sidecarDraining(serviceId: string, pid: number): Promise<{ withdrawn: true }> {
    if (!this.proxies.sidecarDraining(serviceId, pid))
      throw new MeshError('MESH_ERR_NOT_FOUND', `this agent runs no sidecar for '${serviceId}'`, {
        hint: 'A sidecar of a service being deregistered need not be withdrawn: the registry no longer has it.',
      });
    const reported = (await this.#withdrawals.get(serviceId)) ?? false;
    if (!reported && !(await this.#sync.reportDraining(serviceId, true)))
      throw new MeshError(
        'MESH_ERR_UNAVAILABLE',
        `the registry did not take '${serviceId}' as draining; the next sync will carry it`,
        { hint: 'The sidecar drains anyway; callers drop it when their connections close.' },
      );
    return { withdrawn: true };
  }

  /** Sidecars that refused their registration's snapshot, by service id. */
  #sidecarProblems(): Map<string, string> {
    return new Map(this.proxies.proxies().flatMap((p) => (p.problem ? [[p.serviceId, p.problem] as const] : [])));
  }

  definitionProblems(): DefinitionProblem[] {
    return this.#registrations.definitionProblems();
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
      startedAt: this.#startedAt.toISOString(),
      sync: this.#sync.status(),
      services: this.#state.list().length,
      sidecarProblems: [...this.#sidecarProblems()].map(([service, problem]) => ({ service, problem })),
    };
  }

  /** A read from the registry with this node's identity (for `meshctl status` on this host). */
  registryGet(path: string, query: Record<string, string>): Promise<RegistryRead> {
    return this.#link.call((c) => c.http.get<unknown>(path, { query }));
  }

  proxyStats(): Promise<ProxyStats[]> {
    return this.proxies.stats();
  }

  async nodeCertificateExpiry(): Promise<string> {
    return certExpiry(await readFile(this.paths.nodeCert, 'utf8')).toISOString();
  }

  // ---- internals ------------------------------------------------------------------------------

  async #renewNodeCertificateIfDue(): Promise<void> {
    const pem = await readFile(this.paths.nodeCert, 'utf8');
    const { X509Certificate } = await import('node:crypto');
    const x = new X509Certificate(pem);
    // The same half-life rule as the service leaves (src/ca/renewal.ts).
    if (!renewalDue({ notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) })) return;
    const { keyPem, csrPem } = await createKeyAndCsr({
      spiffeId: nodeId(this.config.trustDomain, this.config.nodeName),
    });
    const res = await this.#link.call((c) => c.renewNodeCertificate(this.config.nodeName, csrPem));
    await writeFileAtomic(this.paths.nodeKey, keyPem, 0o600);
    await writeFileAtomic(this.paths.nodeCert, res.certificate, 0o600);
    await writeFileAtomic(this.paths.roots, res.roots.join(''), 0o600);
    await this.#link.load();
    this.log.info({ notAfter: res.notAfter }, 'renewed the node certificate');
  }
}
