/** A steady trickle of requests with latency recorded in an HDR histogram (open loop: fixed rate). */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
// One module of hdr-histogram-js rather than its index (see registry/metrics.ts).
import { build } from 'hdr-histogram-js/dist/HistogramBuilder.js';
import { sleep } from '../util/async.js';

export interface TrafficSummary {
  requests: number;
  ok: number;
  failed: number;
  byStatus: Record<string, number>;
  byInstance: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class TrafficGenerator {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  readonly #histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  #timer: NodeJS.Timeout | undefined;
  #inflight = 0;
  readonly #s: TrafficSummary = {
    requests: 0,
    ok: 0,
    failed: 0,
    byStatus: {},
    byInstance: {},
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0,
  };

  readonly #target: { host: string; port: number };
  readonly #rps;

  constructor(target: { host: string; port: number }, rps = 20) {
    this.#target = target;
    this.#rps = rps;
  }

  start(): void {
    const every = Math.max(1, Math.round(1000 / this.#rps));
    this.#timer = setInterval(() => this.#fire(), every);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    for (let i = 0; i < 100 && this.#inflight > 0; i++) await sleep(50);
    this.#agent.destroy();
  }

  summary(): TrafficSummary {
    return {
      ...this.#s,
      byStatus: { ...this.#s.byStatus },
      byInstance: { ...this.#s.byInstance },
      p50Ms: this.#histogram.getValueAtPercentile(50) / 1000,
      p99Ms: this.#histogram.getValueAtPercentile(99) / 1000,
      maxMs: this.#histogram.maxValue / 1000,
    };
  }

  #fire(): void {
    if (this.#inflight > 200) return;
    this.#inflight += 1;
    const t0 = process.hrtime.bigint();
    // A W3C traceparent, so the demo shows propagation in access logs.
    const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const req = http.get(
      { ...this.#target, path: '/', agent: this.#agent, timeout: 5000, headers: { traceparent } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          this.#record(t0, String(code), code >= 200 && code < 400);
          try {
            const inst = (JSON.parse(body) as { api?: { instance?: string } }).api?.instance;
            if (inst) this.#s.byInstance[inst] = (this.#s.byInstance[inst] ?? 0) + 1;
          } catch {
            // Not JSON: an error page, counted by status already.
          }
        });
        res.on('error', () => this.#record(t0, 'error', false));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => this.#record(t0, 'error', false));
  }

  #record(t0: bigint, status: string, ok: boolean): void {
    this.#inflight -= 1;
    this.#s.requests += 1;
    if (ok) this.#s.ok += 1;
    else this.#s.failed += 1;
    this.#s.byStatus[status] = (this.#s.byStatus[status] ?? 0) + 1;
    this.#histogram.recordValue(Math.max(1, Number((process.hrtime.bigint() - t0) / 1000n)));
  }
}
