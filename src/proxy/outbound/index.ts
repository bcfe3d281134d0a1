/**
 * The outbound side: one listener per upstream of the snapshot, reconciled on every push.
 * This module and everything under outbound/ import nothing from the inbound side.
 */
import type { UpstreamMetrics } from '../../api/metrics.js';
import type { Logger } from '../../util/log.js';
import type { AccessLog } from '../access-log.js';
import { ThrottledLog } from '../log-throttle.js';
import type { ProxySnapshot, SnapshotUpstream } from '../snapshot.js';
import type { ClientTls, ClusterSettings } from './cluster.js';
import type { OutboundContext } from './context.js';
import { listenKey, OutboundListener } from './listener.js';

export { seededRandom, createBalancer, type Balancer, type Random } from './balancers.js';
export type { ClientTls, ClusterSettings } from './cluster.js';
export type { OutboundContext } from './context.js';
export { OutboundListener } from './listener.js';

export interface PreparedOutbound {
  commit(): void;
  rollback(): Promise<void>;
}

export class Outbound {
  readonly #log: Logger;
  readonly #throttled: ThrottledLog;
  readonly #settings: ClusterSettings;
  readonly #drainMs: number;
  readonly #ctx: OutboundContext;
  /** Keyed by listenKey. */
  #listeners = new Map<string, OutboundListener>();
  /** Listeners a push removed, still draining. */
  readonly #closing = new Set<Promise<void>>();

  constructor(log: Logger, settings: ClusterSettings, drainMs: number, accessLog: AccessLog) {
    this.#log = log;
    this.#throttled = new ThrottledLog(log);
    this.#settings = settings;
    this.#drainMs = drainMs;
    this.#ctx = { accessLog, source: '' };
  }

  /**
   * The listener already serving `u`: the same listen key, or the one bound on the port
   * `u` names (the OS's pick for an earlier port 0, now named explicitly).
   */
  #existing(u: SnapshotUpstream): OutboundListener | undefined {
    const byKey = this.#listeners.get(listenKey(u));
    if (byKey || u.localPort === 0) return byKey;
    for (const l of this.#listeners.values()) {
      const a = l.address();
      if (a && a.port === u.localPort && a.address === u.localAddress) return l;
    }
    return undefined;
  }

  /** Binds the listeners `next` adds; nothing serving changes until commit(). */
  async prepare(next: ProxySnapshot, tls: ClientTls, tlsRotated: boolean): Promise<PreparedOutbound> {
    const plan = new Map<SnapshotUpstream, OutboundListener | undefined>(
      next.upstreams.map((u) => [u, this.#existing(u)]),
    );
    const fresh = new Map<SnapshotUpstream, OutboundListener>();
    try {
      for (const [u, existing] of plan) {
        if (!existing)
          fresh.set(u, await OutboundListener.open(u, tls, this.#settings, this.#throttled, this.#log, this.#ctx));
      }
    } catch (e) {
      await Promise.all([...fresh.values()].map((l) => l.close(0)));
      throw e;
    }
    return {
      commit: () => {
        this.#ctx.source = next.service.name;
        const kept = new Map<string, OutboundListener>();
        const reused = new Set<OutboundListener>();
        for (const [u, existing] of plan) {
          if (existing) {
            existing.update(u, tls, tlsRotated);
            reused.add(existing);
          }
          kept.set(listenKey(u), existing ?? fresh.get(u)!);
        }
        for (const l of this.#listeners.values()) {
          if (!reused.has(l)) this.#drain(l);
        }
        this.#listeners = kept;
      },
      rollback: async () => {
        await Promise.all([...fresh.values()].map((l) => l.close(0)));
      },
    };
  }

  #drain(l: OutboundListener): void {
    const p = l
      .close(this.#drainMs)
      .catch((e: unknown) => this.#log.error({ err: e }, 'closing an outbound listener failed'));
    this.#closing.add(p);
    void p.finally(() => this.#closing.delete(p));
  }

  /** The listener of upstream `service`, if the snapshot has one. */
  listener(service: string): OutboundListener | undefined {
    for (const l of this.#listeners.values()) if (l.cluster.service === service) return l;
    return undefined;
  }

  /** Per upstream (and endpoint) figures for `GET /metrics`. */
  metrics(): UpstreamMetrics[] {
    return [...this.#listeners.values()].map((l) => l.metrics());
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries([...this.#listeners.values()].map((l) => [l.cluster.service, l.toJSON()]));
  }

  async close(drainMs: number): Promise<void> {
    const all = [...this.#listeners.values()];
    this.#listeners = new Map();
    await Promise.all([...all.map((l) => l.close(drainMs)), ...this.#closing]);
  }
}
