/**
 * The relay's young-generation collections (src/proxy/relay-gc.ts): once turned on, every
 * RELAY_GC_BYTES counted ask V8 for one scavenge (seen as a minor GC entry by perf_hooks), and
 * fewer bytes ask for none. What this bounds in a real sidecar is pinned by body-memory.test.ts.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { countChunk, enableRelayGc, RELAY_GC_BYTES, relayed } from '../../src/proxy/relay-gc.js';

/** Minor GCs seen while `f` runs (entries are delivered asynchronously, so a tick is waited for). */
async function minorGcsDuring(f: () => void): Promise<number> {
  const seen: PerformanceEntry[] = [];
  const obs = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  f();
  await new Promise((resolve) => setTimeout(resolve, 50));
  obs.disconnect();
  return seen.filter(
    (e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR,
  ).length;
}

describe('relay-gc', () => {
  it('asks for one scavenge per RELAY_GC_BYTES relayed once enabled, none for fewer, and keeps gc off the global', async () => {
    expect(enableRelayGc()).toBe(true);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    // Whatever was counted before (other tests in this worker) is flushed by one full count.
    relayed(RELAY_GC_BYTES);
    expect(await minorGcsDuring(() => relayed(RELAY_GC_BYTES / 4))).toBe(0);
    const chunk = Buffer.alloc(64 * 1024);
    const chunks = (3 * RELAY_GC_BYTES) / chunk.length;
    const n = await minorGcsDuring(() => {
      for (let i = 0; i < chunks; i++) countChunk(chunk);
    });
    // Three full counts (the first completes the quarter above): three asked for; V8 may add its own.
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(4);
  });
});
