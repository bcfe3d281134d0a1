/**
 * The relay's young-generation collections (src/proxy/relay-gc.ts): once turned on, every
 * RELAY_GC_BYTES counted ask V8 for one scavenge (seen as a minor GC entry by perf_hooks), and
 * fewer bytes ask for none; array buffers a scavenge cannot free (promoted, then dead) get one full
 * collection once they pile up past RELAY_MAJOR_GC_BYTES. What this bounds in a real sidecar is pinned by body-memory.test.ts.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import {
  countChunk,
  enableRelayGc,
  RELAY_GC_BYTES,
  RELAY_MAJOR_GC_BYTES,
  RELAY_MAJOR_GC_EVERY,
  relayed,
} from '../../src/proxy/relay-gc.js';

/** GCs of `kind` seen while `f` runs (entries are delivered asynchronously, so a tick is waited for). */
async function gcsDuring(f: () => void, kind = constants.NODE_PERFORMANCE_GC_MINOR): Promise<number> {
  const seen: PerformanceEntry[] = [];
  const obs = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  f();
  await new Promise((resolve) => setTimeout(resolve, 50));
  obs.disconnect();
  return seen.filter((e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === kind).length;
}
const minorGcsDuring = (f: () => void): Promise<number> => gcsDuring(f);

/** Many short-lived objects (kept in a ring, so none is optimised away): V8's own scavenges, which promote whatever is still referenced. */
function churn(): void {
  const ring = new Array<{ i: number }>(1024);
  for (let i = 0; i < 4_000_000; i++) ring[i & 1023] = { i };
}

/** `mb` 1 MB buffers held through the churn's scavenges (so promoted), unreferenced on return; their bytes. */
function promotedThenDropped(mb: number): number {
  const held = Array.from({ length: mb }, () => Buffer.allocUnsafeSlow(1024 * 1024).fill(1));
  churn();
  return held.reduce((n, b) => n + b.length, 0);
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

  it('asks for a full collection once array buffers a scavenge cannot free (promoted to old space) pile up', async () => {
    expect(enableRelayGc()).toBe(true);
    // The floor (what buffers hold after a scavenge) is taken, and the rate limit passed.
    for (let i = 0; i < RELAY_MAJOR_GC_EVERY; i++) relayed(RELAY_GC_BYTES);
    // Buffers still referenced through V8's own scavenges are promoted; then they die in old space.
    expect(promotedThenDropped(RELAY_MAJOR_GC_BYTES / (1024 * 1024) + 8)).toBeGreaterThan(RELAY_MAJOR_GC_BYTES);
    const before = process.memoryUsage().arrayBuffers;
    // (The 50 ms gcsDuring waits also let V8's background thread free the collected backing stores.)
    const majors = await gcsDuring(() => relayed(RELAY_GC_BYTES), constants.NODE_PERFORMANCE_GC_MAJOR);
    expect(majors).toBe(1);
    expect(before - process.memoryUsage().arrayBuffers).toBeGreaterThan(RELAY_MAJOR_GC_BYTES);
    // Once collected, more scavenges with nothing piled up ask for no further full collection.
    const again = await gcsDuring(() => {
      for (let i = 0; i < RELAY_MAJOR_GC_EVERY; i++) relayed(RELAY_GC_BYTES);
    }, constants.NODE_PERFORMANCE_GC_MAJOR);
    expect(again).toBe(0);
  });
});
