/**
 * Gathers the figures of this host's sidecars every few seconds and pushes them to the
 * registry, which merges them mesh-wide (see src/api/metrics.ts for why it lives there).
 * The latest sample also feeds the Prometheus endpoint; the samples of the last window give
 * `meshctl services` what each sidecar's resilience did lately, without the registry.
 */
import type { Logger } from '../../util/log.js';
import type { NodeMetricsReport, ProxyMetrics } from '../../api/metrics.js';
import { resilienceWindow, type ResilienceWindow } from '../../api/resilience-window.js';
import type { RegistryLink } from '../registry-link.js';

/** The window `meshctl services` reports resilience over, as the registry's overview does. */
export const RESILIENCE_WINDOW_MS = 10_000;

/** What one sidecar's resilience did towards each of its upstreams over the last window. */
export interface SidecarResilience {
  windowSeconds: number;
  upstreams: Array<{ service: string } & ResilienceWindow>;
}

export interface MetricsSource {
  /** Each running proxy's metrics (the proxy's `GET /metrics`). */
  collect(): Promise<Array<Omit<ProxyMetrics, 'node'>>>;
}

export class MetricsReporter {
  #timer: NodeJS.Timeout | undefined;
  #last: NodeMetricsReport | undefined;
  /** Recent samples, oldest first: the window and one older, as the base of the difference. */
  #recent: NodeMetricsReport[] = [];
  #failures = 0;

  readonly #o: { node: string; link: RegistryLink; source: MetricsSource; log: Logger; everyMs?: number };

  constructor(o: { node: string; link: RegistryLink; source: MetricsSource; log: Logger; everyMs?: number }) {
    this.#o = o;
  }

  start(): void {
    const tick = async () => {
      await this.sampleAndPush();
      this.#timer = setTimeout(() => void tick(), this.#o.everyMs ?? 2000);
      this.#timer.unref();
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  latest(): NodeMetricsReport | undefined {
    return this.#last;
  }

  /**
   * What the sidecar of `serviceId` did towards its upstreams over the last window: newest
   * sample against the oldest one inside the window (none yet: zeros; one: its totals).
   */
  resilience(serviceId: string): SidecarResilience {
    const newest = this.#recent[this.#recent.length - 1];
    const proxy = newest?.proxies.find((p) => p.serviceId === serviceId);
    if (newest === undefined || proxy === undefined)
      return { windowSeconds: RESILIENCE_WINDOW_MS / 1000, upstreams: [] };
    const base = this.#recent.find(
      (r) => r.sampledAt >= newest.sampledAt - RESILIENCE_WINDOW_MS - 1000 && r !== newest,
    );
    const before = base?.proxies.find((p) => p.serviceId === serviceId);
    return {
      windowSeconds: RESILIENCE_WINDOW_MS / 1000,
      upstreams: proxy.upstreams.map((u) => ({
        service: u.service,
        ...resilienceWindow(u.resilience, before?.upstreams.find((x) => x.service === u.service)?.resilience),
      })),
    };
  }

  async sampleAndPush(): Promise<void> {
    const proxies = (await this.#o.source.collect().catch(() => [])).map((p) => ({ ...p, node: this.#o.node }));
    this.#last = { sampledAt: Date.now(), proxies };
    this.#recent.push(this.#last);
    // Keep one sample older than the window, as the base of the difference.
    const from = this.#last.sampledAt - RESILIENCE_WINDOW_MS;
    while (this.#recent.length > 2 && this.#recent[1]!.sampledAt <= from) this.#recent.shift();
    try {
      await this.#o.link.call((c) => c.reportMetrics(this.#o.node, this.#last!));
      this.#failures = 0;
    } catch (e) {
      // Figures are best effort: the next sample carries the totals anyway.
      if (this.#failures++ === 0)
        this.#o.log.debug({ err: (e as Error).message }, 'could not push metrics to the registry');
    }
  }
}
