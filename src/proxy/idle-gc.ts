/**
 * The old generation's collection while the proxy is idle, not under the next traffic (issue 13
 * §4, docs/BENCHMARKS.md "The L7 tail at 1,000 req/s"). With 2 MB semi-spaces (./process-flags.ts)
 * a burst of traffic promotes what it has in flight at each of its frequent scavenges, so the old
 * generation grows 6-8 MB over a few seconds at saturation and V8 collects it later, whenever it
 * reaches its limit: in the bench, as often as not in the fixed-rate run that follows, a
 * mark-compact of 6-13 ms (more on a busy box) with incremental steps of up to 7 ms, each of them
 * a stall every request in flight waits behind. So every IDLE_GC_CHECK_MS the proxy looks at
 * what it did: if it used less than IDLE_CPU_SHARE of a CPU over that window and its old
 * generation is IDLE_GC_GROWTH_BYTES above the lowest level seen since its last collection, it
 * collects now, while nobody waits. A proxy under steady load is never idle and never collects
 * here; an idle one collects at most once per growth. Only when relay-gc has V8's gc
 * (`meshctl proxy run`).
 */
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { fullCollection } from './relay-gc.js';

/** How often the proxy looks: a window this long with (almost) no work is idle. */
export const IDLE_GC_CHECK_MS = 100;
/** Share of one CPU below which a window counts as idle (5 %: 5 ms of 100). */
export const IDLE_CPU_SHARE = 0.05;
/** Growth of the old generation above its lowest level since the last collection that is worth one. */
export const IDLE_GC_GROWTH_BYTES = 2 * 1024 * 1024;

export interface IdleGcProbes {
  /** CPU this process has used so far, in µs (all its threads). */
  cpuUs: () => number;
  /** The V8 heap in use outside the young generation, in bytes. */
  heapUsed: () => number;
  /** A full collection; false when none can be asked for. */
  collect: () => boolean;
}

const REAL: IdleGcProbes = {
  cpuUs: () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  },
  heapUsed: () => {
    let n = 0;
    for (const sp of getHeapSpaceStatistics()) if (!sp.space_name.startsWith('new_')) n += sp.space_used_size;
    return n;
  },
  collect: fullCollection,
};

export class IdleGc {
  readonly #probes: IdleGcProbes;
  readonly #timer: NodeJS.Timeout | undefined;
  #lastCpu: number;
  #floor: number;
  /** Collections made while idle, since start. */
  collections = 0;

  constructor(probes: IdleGcProbes = REAL, start = true) {
    this.#probes = probes;
    this.#lastCpu = probes.cpuUs();
    this.#floor = probes.heapUsed();
    if (start) {
      let last = performance.now();
      this.#timer = setInterval(() => {
        const now = performance.now();
        this.check(now - last);
        last = now;
      }, IDLE_GC_CHECK_MS);
      this.#timer.unref();
    }
  }

  /**
   * One look, `elapsedMs` after the last: collects if that window was idle and the old generation
   * has grown. A window that came late (over 1.5 × IDLE_GC_CHECK_MS) is not idle: the process
   * was not run (a busy machine), and its work is waiting.
   */
  check(elapsedMs: number): boolean {
    const cpu = this.#probes.cpuUs();
    const used = cpu - this.#lastCpu;
    this.#lastCpu = cpu;
    const heap = this.#probes.heapUsed();
    // V8's own full collections lower it.
    if (heap < this.#floor) this.#floor = heap;
    if (elapsedMs > 1.5 * IDLE_GC_CHECK_MS) return false;
    if (used > IDLE_CPU_SHARE * elapsedMs * 1000 || heap - this.#floor < IDLE_GC_GROWTH_BYTES) return false;
    if (!this.#probes.collect()) return false;
    this.collections += 1;
    this.#floor = this.#probes.heapUsed();
    // The collection's own CPU is not the next window's work.
    this.#lastCpu = this.#probes.cpuUs();
    return true;
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
