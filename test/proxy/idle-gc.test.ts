/**
 * The idle collection (src/proxy/idle-gc.ts): a window in which the proxy used (almost) no CPU,
 * after its old generation grew by IDLE_GC_GROWTH_BYTES, gets one full collection; a busy window,
 * or too little growth, gets none, and one growth gets one collection, not one per window. Then
 * with V8's real gc: the collection is a major GC (perf_hooks) and frees promoted garbage.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { IDLE_CPU_SHARE, IDLE_GC_CHECK_MS, IDLE_GC_GROWTH_BYTES, IdleGc } from '../../src/proxy/idle-gc.js';
import { enableRelayGc } from '../../src/proxy/relay-gc.js';

const MB = 1024 * 1024;

/** Probes the test sets by hand: CPU used so far, old generation in use, collections asked for. */
function fake(heap: number) {
  const state = { cpuUs: 0, heap, collected: 0, heapAfter: heap };
  const probes = {
    cpuUs: () => state.cpuUs,
    heapUsed: () => state.heap,
    collect: () => {
      state.collected += 1;
      state.heap = state.heapAfter;
      return true;
    },
  };
  return { state, idle: new IdleGc(probes, false) };
}

/** Objects held through V8's scavenges (so promoted to the old generation), dropped on return. */
function promoteAndDrop(): number {
  const held: Array<{ i: number; pad: string }> = [];
  for (let i = 0; i < 120_000; i++) held.push({ i, pad: `x${i}` });
  const ring = new Array<{ i: number }>(1024);
  for (let i = 0; i < 2_000_000; i++) ring[i & 1023] = { i };
  return held.length;
}

const BUSY_US = IDLE_CPU_SHARE * IDLE_GC_CHECK_MS * 1000 + 1;

describe('IdleGc', () => {
  it('collects in an idle window once the old generation has grown, once per growth', () => {
    const { state, idle } = fake(10 * MB);
    state.heap = 10 * MB + IDLE_GC_GROWTH_BYTES - 1;
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    state.heap = 10 * MB + IDLE_GC_GROWTH_BYTES;
    state.heapAfter = 10.5 * MB;
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(true);
    expect(state.collected).toBe(1);
    // Idle again, nothing grown since: no second collection.
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    expect(idle.collections).toBe(1);
  });

  it('does not collect in a busy window, and does once the load stops', () => {
    const { state, idle } = fake(10 * MB);
    state.heap = 20 * MB;
    for (let i = 0; i < 5; i++) {
      state.cpuUs += BUSY_US;
      expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    }
    expect(state.collected).toBe(0);
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(true);
  });

  it('does not take a late window (the process was not run: its work is waiting) for an idle one', () => {
    const { state, idle } = fake(10 * MB);
    state.heap = 20 * MB;
    expect(idle.check(2 * IDLE_GC_CHECK_MS)).toBe(false);
    expect(state.collected).toBe(0);
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(true);
  });

  it("measures growth from the lowest level seen, which V8's own collections lower", () => {
    const { state, idle } = fake(14 * MB);
    state.cpuUs += BUSY_US;
    state.heap = 9 * MB; // a mark-compact of V8's own during the load
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    state.heap = 9 * MB + IDLE_GC_GROWTH_BYTES;
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(true);
  });

  it("with V8's gc: one major collection, which frees what was promoted and dropped", async () => {
    expect(enableRelayGc()).toBe(true);
    const idle = new IdleGc(undefined, false);
    promoteAndDrop();
    const seen: PerformanceEntry[] = [];
    const obs = new PerformanceObserver((list) => seen.push(...list.getEntries()));
    obs.observe({ entryTypes: ['gc'] });
    // The window of the allocation itself was busy; one of the quiet ones after it collects.
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    let collected = false;
    for (let i = 0; i < 40 && !collected; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      collected = idle.check(IDLE_GC_CHECK_MS);
    }
    expect(collected).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    obs.disconnect();
    const majors = seen.filter(
      (e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR,
    );
    expect(majors.length).toBeGreaterThanOrEqual(1);
    expect(idle.collections).toBe(1);
    expect(idle.check(IDLE_GC_CHECK_MS)).toBe(false);
    idle.close();
  });
});
