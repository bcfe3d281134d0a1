/**
 * Gathers the figures of this host's sidecars every few seconds and pushes them to the
 * registry, which merges them mesh-wide (see src/api/metrics.ts for why it lives there).
 * The latest sample also feeds the Prometheus endpoint.
 */
import type { Logger } from '../../util/log.js';
import type { NodeMetricsReport, ProxyMetrics } from '../../api/metrics.js';
import type { RegistryLink } from '../registry-link.js';

export interface MetricsSource {
  /** Each running proxy's metrics (the proxy's `GET /metrics`). */
  collect(): Promise<Array<Omit<ProxyMetrics, 'node'>>>;
}

export class MetricsReporter {
  #timer: NodeJS.Timeout | undefined;
  #last: NodeMetricsReport | undefined;
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

  async sampleAndPush(): Promise<void> {
    const proxies = (await this.#o.source.collect().catch(() => [])).map((p) => ({ ...p, node: this.#o.node }));
    this.#last = { sampledAt: Date.now(), proxies };
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
