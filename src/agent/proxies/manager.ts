/**
 * The agent's data-plane side: for every local service that wants a sidecar, a leaf
 * certificate, a config snapshot built from the registry's view, and a supervised proxy
 * process that gets every new snapshot. The last snapshot is also written to disk, so a
 * proxy relaunched while the agent or registry is down serves what it served before.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../../util/log.js';
import { renewAt } from '../../ca/renewal.js';
import { MeshError } from '../../errors/index.js';
import { ensurePrivateDir, writeFileAtomic } from '../../util/fs.js';
import type { RegistryLink } from '../registry-link.js';
import type { LocalService } from '../state.js';
import type { ProxyMetrics } from '../../api/metrics.js';
import { Backoff } from '../../util/backoff.js';
import { CatalogWatch } from './watch.js';
import { LeafStore, type Leaf } from './leaf.js';
import { buildSnapshot } from './snapshot.js';
import { indexEntries, policyServices } from './policy.js';
import { ProxyProcess, type ProxyProcessInfo } from './process.js';

/** One proxy's process info and the stats its admin endpoint gave (or why it gave none). */
export interface ProxyStats {
  info: ProxyProcessInfo;
  stats: unknown;
}

export interface ProxyManagerOptions {
  link: RegistryLink;
  log: Logger;
  trustDomain: string;
  advertise: string;
  dataDir: string;
  cliEntry: string;
  /** Access logs for every sidecar: a directory or "stdout"; undefined leaves it to each service's meta. */
  accessLogs?: string;
  /** Each sidecar's drain when it stops (`proxy run --drain-seconds`). */
  drainSeconds: number;
  /** The agent's admin socket, given to each sidecar so it can say it drains. */
  agentSocket?: string;
  /** A sidecar started draining (true) or a new one serves after a drain (false). */
  onDraining?: (serviceId: string, draining: boolean) => void;
}

interface Managed {
  service: LocalService;
  proc: ProxyProcess;
  leaf: Leaf | undefined;
  leafTimer: NodeJS.Timeout | undefined;
  leafBackoff: Backoff;
  version: number;
  /** The last snapshot pushed, version aside: an unchanged view is not pushed again. */
  lastKey: string | undefined;
}

export class ProxyManager {
  readonly #managed = new Map<string, Managed>();
  readonly #watch: CatalogWatch;
  readonly #leaves: LeafStore;
  readonly #dirs: { snapshots: string; proxies: string };
  #stopped = false;

  readonly #o: ProxyManagerOptions;

  constructor(o: ProxyManagerOptions) {
    this.#o = o;
    this.#leaves = new LeafStore(join(o.dataDir, 'services'), o.link, o.trustDomain);
    this.#dirs = { snapshots: join(o.dataDir, 'snapshots'), proxies: join(o.dataDir, 'proxies') };
    this.#watch = new CatalogWatch(o.link, o.log, () => {
      // Config entries may send an upstream's traffic to other services: watch those too.
      this.#watchServices();
      void this.#refreshAll();
    });
  }

  async start(): Promise<void> {
    await ensurePrivateDir(this.#dirs.snapshots);
    await ensurePrivateDir(this.#dirs.proxies);
    // Where access logs go when a service or the agent turns them on.
    await ensurePrivateDir(join(this.#o.dataDir, 'logs'));
    if (this.#o.accessLogs && this.#o.accessLogs !== 'stdout') await ensurePrivateDir(this.#o.accessLogs);
    this.#watch.start();
  }

  /** Makes the set of proxies match the local services that want one. */
  async update(services: readonly LocalService[]): Promise<void> {
    if (this.#stopped) return;
    const wanted = new Map(
      services.filter((s) => s.registration.proxy && s.registration.meshPort !== undefined).map((s) => [s.id, s]),
    );
    // Sidecars of services gone drain side by side, not one drain after another.
    const gone = [...this.#managed].filter(([id]) => !wanted.has(id));
    await Promise.all(
      gone.map(async ([id, m]) => {
        this.#managed.delete(id);
        clearTimeout(m.leafTimer);
        await m.proc.close({ shutdown: true });
        await this.#leaves.remove(id);
        this.#o.log.info({ service: id }, 'stopped proxy of deregistered service');
      }),
    );
    for (const [id, svc] of wanted) {
      const m = this.#managed.get(id);
      if (m) {
        m.service = svc;
        continue;
      }
      const proc = new ProxyProcess({
        serviceId: id,
        adminSocket: join(this.#dirs.proxies, `${shortName(id)}.sock`),
        snapshotFile: join(this.#dirs.snapshots, `${id}.json`),
        logFile: join(this.#dirs.proxies, `${id}.log`),
        cliEntry: this.#o.cliEntry,
        drainSeconds: this.#o.drainSeconds,
        ...(this.#o.agentSocket ? { agentSocket: this.#o.agentSocket } : {}),
        ...(this.#o.onDraining ? { onDraining: this.#o.onDraining } : {}),
        log: this.#o.log,
      });
      const entry: Managed = {
        service: svc,
        proc,
        leaf: await this.#leaves.load(id),
        leafTimer: undefined,
        leafBackoff: new Backoff(500, 30_000),
        version: 0,
        lastKey: undefined,
      };
      this.#managed.set(id, entry);
      // A valid leaf on disk is enough to serve (registry down); otherwise the proxy waits for one.
      if (entry.leaf && entry.leaf.notAfter > Date.now()) await this.#refresh(entry);
      await proc.start();
      this.#scheduleLeaf(entry, 0);
    }
    this.#watchServices();
    await this.#refreshAll();
  }

  /** The upstreams of every managed service, and every service their config entries route or split to. */
  #watchServices(): void {
    const entries = indexEntries(this.#watch.configEntries() ?? []);
    this.#watch.setServices(
      new Set(
        [...this.#managed.values()].flatMap((m) =>
          m.service.registration.upstreams.flatMap((u) => policyServices(u.service, entries)),
        ),
      ),
    );
  }

  /** Whether the sidecar of this local service drains now. */
  draining(serviceId: string): boolean {
    return this.#managed.get(serviceId)?.proc.draining ?? false;
  }

  /**
   * The sidecar of `serviceId` (process `pid`) says it drains. False when this agent runs no
   * sidecar for it (a service being deregistered: the registry no longer has it anyway).
   */
  sidecarDraining(serviceId: string, pid: number): boolean {
    const m = this.#managed.get(serviceId);
    if (!m) return false;
    m.proc.markDraining(pid);
    return true;
  }

  proxies(): ProxyProcessInfo[] {
    return [...this.#managed.values()].map((m) => m.proc.info());
  }

  async stats(): Promise<ProxyStats[]> {
    return Promise.all(
      [...this.#managed.values()].map(async (m) => ({
        info: m.proc.info(),
        stats: await m.proc.stats().catch((e: unknown) => ({ error: (e as Error).message })),
      })),
    );
  }

  /** Metrics of every proxy that answers; one that does not is left out of this sample. */
  async collectMetrics(): Promise<Array<Omit<ProxyMetrics, 'node'>>> {
    const all = await Promise.all([...this.#managed.values()].map((m) => m.proc.metrics().catch(() => undefined)));
    return all.filter((x): x is Omit<ProxyMetrics, 'node'> => x !== undefined);
  }

  /** Agent restart: stop watching, leave the proxies running for the next agent to adopt. */
  async stop(opts: { shutdownProxies?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    this.#watch.stop();
    // Side by side: with shutdownProxies each sidecar drains (up to drainSeconds) at the same time.
    await Promise.all(
      [...this.#managed.values()].map((m) => {
        clearTimeout(m.leafTimer);
        return m.proc.close(opts.shutdownProxies ? { shutdown: true } : {});
      }),
    );
    this.#managed.clear();
  }

  async #refreshAll(): Promise<void> {
    for (const m of this.#managed.values()) await this.#refresh(m);
  }

  async #refresh(m: Managed): Promise<void> {
    const intentions = this.#watch.intentionsView();
    const revokedSerials = this.#watch.revokedSerials();
    // Without the revocation list a push would let revoked leaves back in: wait for it too.
    // Without the config entries a push would drop the upstreams' routes and splits: wait for them too.
    const configEntries = this.#watch.configEntries();
    if (!m.leaf || !intentions || !revokedSerials || !configEntries) return;
    // An upstream not heard of yet would go out with no endpoints (503s): until every upstream
    // has answered once, the proxy keeps serving what it has (its cached snapshot).
    const entries = indexEntries(configEntries);
    const needed = m.service.registration.upstreams.flatMap((u) => policyServices(u.service, entries));
    if (needed.some((s) => this.#watch.instancesOf(s) === undefined)) return;
    const version = Math.max(m.version + 1, Date.now());
    const body = buildSnapshot({
      version,
      trustDomain: this.#o.trustDomain,
      advertise: this.#o.advertise,
      service: m.service,
      meshPort: m.service.registration.meshPort!,
      leaf: m.leaf,
      intentions,
      revokedSerials,
      instancesOf: (name) => this.#watch.instancesOf(name),
      configEntries,
      endpointId: (x) => endpointId(x.id, x.node),
      ...this.#accessLogFor(m.service),
    });
    const key = JSON.stringify({ ...body, version: 0 });
    if (key === m.lastKey) return;
    m.lastKey = key;
    m.version = version;
    await writeFileAtomic(join(this.#dirs.snapshots, `${m.service.id}.json`), JSON.stringify(body), 0o600);
    m.proc.desired = { version, body };
    await m.proc.push();
  }

  /**
   * Access logs are off unless the agent turns them on for all (--access-logs DIR|stdout) or
   * a service asks with meta `access-log=on` (then into the agent's logs directory).
   */
  #accessLogFor(svc: LocalService): { accessLog?: { enabled: boolean; path?: string } } {
    const global = this.#o.accessLogs;
    const asked = ['on', 'true', 'yes'].includes((svc.registration.meta['access-log'] ?? '').toLowerCase());
    if (!global && !asked) return {};
    if (global === 'stdout') return { accessLog: { enabled: true } };
    const dir = global ?? join(this.#o.dataDir, 'logs');
    return { accessLog: { enabled: true, path: join(dir, `${svc.id}.access.log`) } };
  }

  /** Gets a leaf when missing, and a new one at half-life; retries with backoff. */
  #scheduleLeaf(m: Managed, delayMs: number): void {
    clearTimeout(m.leafTimer);
    m.leafTimer = setTimeout(() => void this.#renewLeaf(m), delayMs);
    m.leafTimer.unref();
  }

  async #renewLeaf(m: Managed): Promise<void> {
    if (this.#stopped || !this.#managed.has(m.service.id)) return;
    if (!LeafStore.due(m.leaf)) {
      this.#scheduleLeaf(m, Math.max(1000, renewAt(m.leaf!) - Date.now()));
      return;
    }
    try {
      m.leaf = await this.#leaves.issue(m.service.id, m.service.registration.name);
      m.leafBackoff.reset();
      this.#o.log.info(
        { service: m.service.id, notAfter: new Date(m.leaf.notAfter).toISOString() },
        'got a new service certificate',
      );
      await this.#refresh(m);
      this.#scheduleLeaf(m, 0);
    } catch (e) {
      // FORBIDDEN until the registration has reached the registry; UNAVAILABLE while it is away.
      const delay = m.leafBackoff.next();
      if (!(e instanceof MeshError && (e.code === 'MESH_ERR_FORBIDDEN' || e.code === 'MESH_ERR_UNAVAILABLE'))) {
        this.#o.log.warn({ service: m.service.id, err: (e as Error).message }, 'could not get a service certificate');
      }
      this.#scheduleLeaf(m, delay);
    }
  }
}

/** Endpoint ids must be unique per upstream: the same instance id lives on many nodes. */
function endpointId(id: string, node: string): string {
  const full = `${id}.${node}`;
  return full.length <= 63
    ? full
    : `${id.slice(0, 40)}.${createHash('sha256').update(full).digest('hex').slice(0, 16)}`;
}

/** Socket paths are limited to ~107 bytes: long ids get a hash. */
function shortName(id: string): string {
  return id.length <= 32 ? id : createHash('sha256').update(id).digest('hex').slice(0, 16);
}
