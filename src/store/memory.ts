/** The in-memory store: for tests and `--store memory`. Everything is lost on exit. */
import { compareKeys } from './keys.js';
import {
  RevisionedStore,
  type Commit,
  type RevisionedStoreOptions,
  type StoreBackend,
  type StoredState,
} from './revisioned-store.js';
import type { KeyValue, WatchBatch } from './types.js';

export type MemoryStoreOptions = RevisionedStoreOptions;

export class MemoryStore extends RevisionedStore {
  readonly kind = 'memory' as const;

  constructor(opts: MemoryStoreOptions = {}) {
    super(new MemoryBackend(), opts);
  }
}

class MemoryBackend implements StoreBackend {
  readonly #kvs = new Map<string, KeyValue>();
  readonly #leaseKeySets = new Map<number, Set<string>>();
  /** History, oldest first, one batch per revision; entries before `head` are compacted. */
  readonly #batches: WatchBatch[] = [];
  #head = 0;

  load(): StoredState {
    return { revision: 1, compactedRevision: 1, lastLeaseId: 0, leases: [] };
  }

  get(key: string): KeyValue | undefined {
    return this.#kvs.get(key);
  }

  range(prefix: string): KeyValue[] {
    const out: KeyValue[] = [];
    for (const kv of this.#kvs.values()) if (kv.key.startsWith(prefix)) out.push(kv);
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  leaseKeys(leaseId: number): string[] {
    return [...(this.#leaseKeySets.get(leaseId) ?? [])].sort(compareKeys);
  }

  history(prefix: string, fromRevision: number): WatchBatch[] {
    const out: WatchBatch[] = [];
    for (let i = this.#firstIndexFrom(fromRevision); i < this.#batches.length; i++) {
      const batch = this.#batches[i] as WatchBatch;
      const events = batch.events.filter((e) => e.kv.key.startsWith(prefix));
      if (events.length > 0) out.push({ revision: batch.revision, events });
    }
    return out;
  }

  commit(c: Commit): void {
    for (const [key, kv] of c.writes) {
      const prev = this.#kvs.get(key);
      if (prev && prev.lease !== 0) this.#leaseKeySets.get(prev.lease)?.delete(key);
      if (kv === null) {
        this.#kvs.delete(key);
        continue;
      }
      this.#kvs.set(key, kv);
      if (kv.lease !== 0) {
        let keys = this.#leaseKeySets.get(kv.lease);
        if (!keys) this.#leaseKeySets.set(kv.lease, (keys = new Set()));
        keys.add(key);
      }
    }
    if (c.revokeLease !== undefined) this.#leaseKeySets.delete(c.revokeLease);
    if (c.batch) this.#batches.push(c.batch);
    this.#head = this.#firstIndexFrom(c.compactedRevision);
    // Shift the array only now and then: one splice per commit would cost O(history) each.
    if (this.#head >= 1024 && this.#head * 2 >= this.#batches.length) {
      this.#batches.splice(0, this.#head);
      this.#head = 0;
    }
  }

  close(): void {
    this.#kvs.clear();
    this.#leaseKeySets.clear();
    this.#batches.length = 0;
    this.#head = 0;
  }

  /** Index of the first kept batch with revision >= rev (binary search; batches are in order). */
  #firstIndexFrom(rev: number): number {
    let lo = this.#head;
    let hi = this.#batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#batches[mid] as WatchBatch).revision < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
