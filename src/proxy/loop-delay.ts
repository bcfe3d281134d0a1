/**
 * How long this proxy's event loop was held up: every request waits behind a stall, so a
 * stall is the tail (issue 13 §4). perf_hooks' monitorEventLoopDelay keeps the distribution
 * (GET /stats `eventLoop`, in ms). With MESHCTL_PROXY_STALL_LOG_MS=N each stall of N ms or
 * more is also logged, stamped in the clocks `--trace-gc` (ms since the process started) and
 * `--cpu-prof` (hrtime µs) use, so that a stall can be lined up with the GC lines and with the
 * slice of a CPU profile (bench/profile-summary.mjs --from/--to) that covers it.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from '../util/log.js';

/** The histogram's sampling timer: fine enough for 10 ms stalls, coarse enough to cost nothing. */
const RESOLUTION_MS = 10;
/** The stall log's own check: a timer this often, late by the stall. */
const TICK_MS = 5;

export interface LoopDelayJson {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Stalls of MESHCTL_PROXY_STALL_LOG_MS or more seen since start (0 when not logging). */
  stallsLogged: number;
}

export class LoopDelay {
  readonly #h: IntervalHistogram;
  #timer: NodeJS.Timeout | undefined;
  #stalls = 0;

  constructor(log: Logger, stallLogMs = Number(process.env.MESHCTL_PROXY_STALL_LOG_MS ?? 0)) {
    this.#h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#h.enable();
    if (Number.isFinite(stallLogMs) && stallLogMs > 0) {
      let last = performance.now();
      let lastCpu = process.cpuUsage();
      this.#timer = setInterval(() => {
        const now = performance.now();
        const cpu = process.cpuUsage();
        const late = now - last - TICK_MS;
        const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
        last = now;
        lastCpu = cpu;
        if (late < stallLogMs) return;
        this.#stalls += 1;
        log.warn(
          {
            stallMs: Math.round(late * 10) / 10,
            // CPU this process used meanwhile (all its threads): about the stall when its own
            // work held the loop, about nothing when the machine did not run it.
            cpuMs: Math.round(cpuMs * 10) / 10,
            // Where the stall began, in --trace-gc's clock and in --cpu-prof's.
            sinceStartMs: Math.round(now - late),
            hrtimeUs: Number(process.hrtime.bigint() / 1000n) - Math.round(late * 1000),
          },
          'event loop stalled',
        );
      }, TICK_MS);
      this.#timer.unref();
    }
  }

  toJSON(): LoopDelayJson {
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    return {
      p50Ms: ms(this.#h.percentile(50)),
      p99Ms: ms(this.#h.percentile(99)),
      maxMs: ms(this.#h.max),
      stallsLogged: this.#stalls,
    };
  }

  close(): void {
    this.#h.disable();
    if (this.#timer) clearInterval(this.#timer);
  }
}
