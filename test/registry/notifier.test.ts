/**
 * The change notifier behind blocking queries: when its store watch loses its place (history
 * compacted while it was away), it resyncs once — every waiter answers and re-reads, and the
 * watch starts again from the current revision — instead of going silent or looping.
 */
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
});
