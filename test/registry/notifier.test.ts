/**
 * The change notifier behind blocking queries: when its store watch loses its place (history
 * compacted while it was away), it resyncs once — every waiter answers and re-reads, and the
 * watch starts again from the current revision — instead of going silent or looping.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshError } from '../../src/errors/index.js';
import { ChangeNotifier } from '../../src/registry/notifier.js';
import { MemoryStore, type Store, type WatchOptions } from '../../src/store/index.js';

/** A memory store whose first watch is dead and fails when the test says so. */
function storeWithLostWatch(): { store: Store; mem: MemoryStore; lose(): void } {
  const mem = new MemoryStore();
  let first: WatchOptions | undefined;
  let calls = 0;
  const store = new Proxy(mem, {
    get(target, prop) {
      // Methods run on the store itself: its #private state is not reachable through a Proxy.
      if (prop !== 'watch') {
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      }
      return (prefix: string, onBatch: Parameters<Store['watch']>[1], opts: WatchOptions = {}) => {
        calls += 1;
        if (calls === 1) {
          first = opts;
          return { cancel: () => {} };
        }
        return target.watch(prefix, onBatch, opts);
      };
    },
  });
  return {
    store,
    mem,
    lose: () => first?.onError?.(new MeshError('MESH_ERR_STORE_COMPACTED', 'compacted while away')),
  };
}

describe('change notifier', () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const s of stops.splice(0)) s();
  });

  it('resyncs once when its watch is compacted away: waiters answer, later changes arrive', async () => {
    const { store, mem, lose } = storeWithLostWatch();
    const n = new ChangeNotifier(store);
    await n.start();
    stops.push(() => n.stop());
    const start = n.revision;
    const waiting = n.wait(['services'], start, 60_000);
    // Missed: the dead watch never delivers it.
    const { revision: missed } = await mem.put('services/api/n1/a', '1');
    lose();
    expect(await waiting).toBeGreaterThanOrEqual(missed);
    expect(n.resyncs).toBe(1);
    // Whoever asks about the gap learns something changed, without waiting.
    expect(await n.wait(['intentions'], start, 60_000)).toBeGreaterThanOrEqual(missed);
    // The new watch delivers what comes next.
    const next = n.wait(['services'], n.revision, 60_000);
    const { revision } = await mem.put('services/api/n1/b', '1');
    expect(await next).toBe(revision);
    expect(n.resyncs).toBe(1);
  });

  it('answers at once a client that is ahead of it (it came from a registry that saw more)', async () => {
    const mem = new MemoryStore();
    const n = new ChangeNotifier(mem);
    await n.start();
    stops.push(() => n.stop());
    expect(await n.wait(['services'], n.revision + 10, 60_000)).toBe(n.revision);
  });

  it('waiters whose waits end together share one timer; an answered wait leaves none behind', async () => {
    const mem = new MemoryStore();
    const n = new ChangeNotifier(mem);
    await n.start();
    stops.push(() => n.stop());
    const rev = n.revision;
    const waits = Array.from({ length: 200 }, () => n.wait(['services'], rev, 60_000));
    expect(n.waiting).toBe(200);
    // Made within the same few milliseconds: one grain, or two if they straddle its edge.
    expect(n.timers).toBeGreaterThanOrEqual(1);
    expect(n.timers).toBeLessThanOrEqual(2);
    const { revision } = await mem.put('services/api/n1/a', '1');
    expect(new Set(await Promise.all(waits))).toEqual(new Set([revision]));
    expect(n.waiting).toBe(0);
    expect(n.timers).toBe(0);
  });

  it('a wait whose time runs out answers with the current revision and stops its timer', async () => {
    const mem = new MemoryStore();
    const n = new ChangeNotifier(mem);
    await n.start();
    stops.push(() => n.stop());
    await mem.put('intentions/web/api', 'allow');
    const { revision } = await mem.put('intentions/web/db', 'deny');
    // Nothing under 'services' changes: only the wait's end answers it.
    expect(await n.wait(['services'], revision, 50)).toBe(revision);
    expect(n.waiting).toBe(0);
    expect(n.timers).toBe(0);
  });

  it('a client that goes away ends its wait at once, and a later change finds no waiter', async () => {
    const mem = new MemoryStore();
    const n = new ChangeNotifier(mem);
    await n.start();
    stops.push(() => n.stop());
    const req = new EventEmitter();
    const waiting = n.wait(['services'], n.revision, 60_000, req);
    const other = n.wait(['services'], n.revision, 60_000);
    expect(n.waiting).toBe(2);
    req.emit('close');
    expect(await waiting).toBe(n.revision);
    expect(n.waiting).toBe(1);
    expect(req.listenerCount('close')).toBe(0);
    const { revision } = await mem.put('services/api/n1/a', '1');
    expect(await other).toBe(revision);
    expect(n.timers).toBe(0);
  });

  it('stopping answers every waiter and leaves no timer running', async () => {
    const mem = new MemoryStore();
    const n = new ChangeNotifier(mem);
    await n.start();
    const waits = [n.wait(['services'], n.revision, 60_000), n.wait(['intentions'], n.revision, 120_000)];
    expect(n.timers).toBe(2);
    n.stop();
    expect(await Promise.all(waits)).toEqual([n.revision, n.revision]);
    expect(n.timers).toBe(0);
    // After stopping nothing changes any more: a new wait answers at once.
    expect(await n.wait(['services'], n.revision, 60_000)).toBe(n.revision);
  });
});
