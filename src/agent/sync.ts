/**
 * Anti-entropy between this host and the registry (after Consul's agent/ae): a full sync at
 * start, on a jittered timer and after every failure (with backoff), a partial push on each
 * local change, and the node lease kept alive in between. A full sync restores the node
 * record, re-registers what the registry lacks or has wrong, pushes check states that differ,
 * and removes instances of this node the host no longer owns. It never duplicates: instances
 * are keyed by (node, id).
 */
import type { Logger } from '../util/log.js';
import { MeshError } from '../errors/index.js';
import type { CheckStatus, ServiceInstance, ServiceRegistration } from '../api/schemas.js';
import type { RegistryLink } from './registry-link.js';
import type { LocalState } from './state.js';
import { Backoff, jittered } from '../util/backoff.js';

export interface CheckReport {
  status: CheckStatus;
  output: string;
}

export interface SyncOptions {
  link: RegistryLink;
  state: LocalState;
  nodeName: string;
  advertise: string;
  leaseTtlSeconds: number;
  /** Current reported state of a check on this host. */
  checkState: (instanceId: string, checkId: string) => CheckReport | undefined;
  /** Whether this instance's sidecar drains now (the registry then has it critical). */
  draining?: (instanceId: string) => boolean;
  log: Logger;
  fullSyncIntervalMs?: number;
  /** Called after each successful full sync (e.g. to renew the node certificate). */
  afterSync?: () => Promise<void>;
}

export interface SyncStatus {
  registry: string;
  reachable: boolean;
  lastSyncAt?: string;
  lastHeartbeatAt?: string;
  lastError?: string;
  consecutiveFailures: number;
}

export class RegistrySync {
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #syncTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = true;
  readonly #backoff = new Backoff(500, 30_000);
  readonly #st: SyncStatus;
  /** Local registrations the registry refused because this node may not serve them: id → message. */
  readonly #refused = new Map<string, string>();

  readonly #o: SyncOptions;

  constructor(o: SyncOptions) {
    this.#o = o;
    this.#st = { registry: o.link.url, reachable: false, consecutiveFailures: 0 };
  }

  start(): void {
    this.#stopped = false;
    this.#scheduleSync(0);
    this.#scheduleHeartbeat();
  }

  stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#syncTimer);
    return this.#running.catch(() => undefined);
  }

  status(): SyncStatus {
    return { ...this.#st, registry: this.#o.link.url };
  }

  /** Why the registry refused a local registration (this node may not serve the service), if it did. */
  refusal(instanceId: string): string | undefined {
    return this.#refused.get(instanceId);
  }

  /** A full sync as soon as the current one is done; resolves when it has run. */
  syncNow(): Promise<boolean> {
    return this.#serial(() => this.#fullSync());
  }

  /** Pushes one check change at once; if the registry is unreachable the next full sync carries it. */
  async reportCheck(instanceId: string, checkId: string, report: CheckReport): Promise<void> {
    await this.#serial(async () => {
      try {
        await this.#o.link.call((c) =>
          c.updateCheck(this.#o.nodeName, instanceId, checkId, report.status, report.output),
        );
        return true;
      } catch (e) {
        // NOT_FOUND: the registry lost the instance; a full sync re-registers it with all states.
        this.#failed(e);
        return false;
      }
    });
  }

  /**
   * Tells the registry at once that an instance's sidecar drains (or serves again); true once
   * the registry has it. Not queued behind a full sync: a draining sidecar waits for this. If
   * the registry is unreachable the next full sync carries it.
   */
  async reportDraining(instanceId: string, draining: boolean): Promise<boolean> {
    try {
      await this.#o.link.call((c) => c.setDraining(this.#o.nodeName, instanceId, draining));
      return true;
    } catch (e) {
      this.#failed(e);
      return false;
    }
  }

  #serial(fn: () => Promise<boolean>): Promise<boolean> {
    const next = this.#running.catch(() => undefined).then(fn);
    this.#running = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  #scheduleSync(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#syncTimer);
    this.#syncTimer = setTimeout(() => {
      void this.#serial(() => this.#fullSync()).then((ok) => {
        this.#scheduleSync(ok ? jittered(this.#o.fullSyncIntervalMs ?? 30_000) : this.#backoff.next());
      });
    }, delayMs);
    this.#syncTimer.unref();
  }

  #scheduleHeartbeat(): void {
    if (this.#stopped) return;
    const every = Math.max(500, (this.#o.leaseTtlSeconds * 1000) / 3);
    this.#heartbeatTimer = setTimeout(
      () => {
        void this.#heartbeat().finally(() => this.#scheduleHeartbeat());
      },
      jittered(every, 0.1),
    );
    this.#heartbeatTimer.unref();
  }

  async #heartbeat(): Promise<void> {
    try {
      await this.#o.link.call((c) => c.heartbeat(this.#o.nodeName, this.#o.leaseTtlSeconds));
      this.#st.lastHeartbeatAt = new Date().toISOString();
      // Back after an outage: sync now rather than when the backoff timer says.
      if (!this.#st.reachable) this.#scheduleSync(0);
      this.#st.reachable = true;
    } catch (e) {
      if (e instanceof MeshError && e.code === 'MESH_ERR_NOT_FOUND') {
        // The registry forgot this node (data loss): a full sync brings it back.
        this.#scheduleSync(0);
        return;
      }
      this.#failed(e);
    }
  }

  async #fullSync(): Promise<boolean> {
    const { link, nodeName, advertise } = this.#o;
    try {
      await link.call((c) => c.updateNode(nodeName, advertise));
      await link.call((c) => c.heartbeat(nodeName, this.#o.leaseTtlSeconds));
      const remote = await link.call((c) => c.nodeInstances(nodeName));
      const remoteById = new Map(remote.instances.map((i) => [i.id, i]));
      const local = this.#o.state.list();
      for (const svc of local) {
        const inst = remoteById.get(svc.id);
        let checkStates = inst?.checkStates ?? {};
        let remoteDraining = inst?.drainingSince !== undefined;
        if (!inst || !sameRegistration(svc.registration, inst, advertise)) {
          const res = await this.#registerOne(svc.id, svc.registration);
          if (!res) continue;
          checkStates = res.instance.checkStates;
          remoteDraining = res.instance.drainingSince !== undefined;
        }
        const draining = this.#o.draining?.(svc.id) ?? false;
        if (draining !== remoteDraining) await link.call((c) => c.setDraining(nodeName, svc.id, draining));
        for (const check of svc.registration.checks) {
          const mine = this.#o.checkState(svc.id, check.id);
          const theirs = checkStates[check.id];
          if (mine && (!theirs || theirs.status !== mine.status)) {
            await link.call((c) => c.updateCheck(nodeName, svc.id, check.id, mine.status, mine.output));
          }
        }
      }
      for (const id of this.#refused.keys()) if (!local.some((s) => s.id === id)) this.#refused.delete(id);
      const owned = new Set(local.map((s) => s.id));
      for (const inst of remote.instances) {
        if (!owned.has(inst.id)) await link.call((c) => c.deregister(nodeName, inst.id));
      }
      this.#st.lastSyncAt = new Date().toISOString();
      this.#st.lastHeartbeatAt = this.#st.lastSyncAt;
      this.#st.reachable = true;
      this.#st.consecutiveFailures = 0;
      delete this.#st.lastError;
      this.#backoff.reset();
      // Learn the other registries of the mesh, to fail over to them later.
      await link.refreshPeers().catch((e: unknown) => this.#o.log.debug({ err: String(e) }, 'peer list not refreshed'));
      await this.#o.afterSync?.().catch((e: unknown) => this.#o.log.warn({ err: String(e) }, 'post-sync task failed'));
      return true;
    } catch (e) {
      this.#failed(e);
      return false;
    }
  }

  /**
   * Registers one instance. A service this node may not serve is refused by the registry for
   * this instance only: it is logged and remembered, and the rest of the sync goes on.
   */
  async #registerOne(id: string, reg: ServiceRegistration): Promise<{ instance: ServiceInstance } | undefined> {
    try {
      const res = await this.#o.link.call((c) => c.register({ ...reg, id }));
      this.#refused.delete(id);
      return res;
    } catch (e) {
      if (!(e instanceof MeshError && e.code === 'MESH_ERR_SERVICE_NOT_AUTHORIZED')) throw e;
      if (!this.#refused.has(id))
        this.#o.log.warn({ service: id, err: e.message }, 'the registry refused a registration');
      this.#refused.set(id, e.message);
      return undefined;
    }
  }

  #failed(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    const wasReachable = this.#st.reachable;
    this.#st.lastError = msg;
    this.#st.consecutiveFailures += 1;
    if (e instanceof MeshError && (e.code === 'MESH_ERR_UNAVAILABLE' || e.code === 'MESH_ERR_TIMEOUT'))
      this.#st.reachable = false;
    if (wasReachable || this.#st.consecutiveFailures === 1)
      this.#o.log.warn({ err: msg }, 'registry sync failed; will retry with backoff');
  }
}

/** True when the registry's instance already says what the local registration says. */
export function sameRegistration(reg: ServiceRegistration, inst: ServiceInstance, nodeAddress: string): boolean {
  const { id: _id, address, ...rest } = reg;
  if ((address ?? nodeAddress) !== inst.address) return false;
  const theirs = inst as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(rest)) {
    if (JSON.stringify(v) !== JSON.stringify(theirs[k])) return false;
  }
  return true;
}
