/**
 * Blocking queries ("answer when something under these prefixes changes after revision N").
 * One store watch feeds every waiter, so thousands of agents waiting cost one map entry each.
 * Changes are tracked per group (a key's first one and two path segments), so a waiter can
 * tell at once whether it already missed a change, without keeping history.
 */
import type { Store, Watcher, WatchBatch } from '../store/types.js';

interface Waiter {
  groups: readonly string[];
  after: number;
  resolve: (revision: number) => void;
  timer: NodeJS.Timeout;
}

export function groupsOfKey(key: string): [string, string] {
  const parts = key.split('/');
  return [parts[0] ?? '', `${parts[0] ?? ''}/${parts[1] ?? ''}`];
}

export class ChangeNotifier {
  readonly #lastChange = new Map<string, number>();
  readonly #waiters = new Set<Waiter>();
  #watcher: Watcher | undefined;
  /** Revisions up to here were seen when the notifier started; any group may have changed by then. */
  #baseline = 0;
  #current = 0;
  #stopped = false;
  #resyncTimer: NodeJS.Timeout | undefined;
  #resyncFailures = 0;
  /** Full resyncs after the watch lost its place (compacted history); for status and tests. */
  resyncs = 0;

  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async start(): Promise<void> {
    this.#baseline = await this.#store.revision();
    this.#current = this.#baseline;
    this.#follow();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#resyncTimer);
    this.#watcher?.cancel();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(this.#current);
    }
    this.#waiters.clear();
  }

  get revision(): number {
    return this.#current;
  }

  /** Latest revision at which any of the groups changed (as far as this process knows). */
  changedAt(groups: readonly string[]): number {
    let rev = this.#baseline;
    for (const g of groups) rev = Math.max(rev, this.#lastChange.get(g) ?? 0);
    return rev;
  }

  /**
   * Resolves with the revision of the first change to a group after `after`, at once if one is
   * already known, or with the current revision when `timeoutMs` passes first.
   */
  wait(groups: readonly string[], after: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    const known = this.changedAt(groups);
    if (known > after) return Promise.resolve(known);
    // A client ahead of this registry came from one that saw more (the same etcd, a moment
    // ahead), or from a store that was since lost: answer now; its read settles which.
    if (after > this.#current) return Promise.resolve(this.#current);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        groups,
        after,
        resolve: (rev) => {
          this.#waiters.delete(waiter);
          clearTimeout(waiter.timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(rev);
        },
        timer: setTimeout(() => waiter.resolve(this.#current), timeoutMs),
      };
      const onAbort = () => waiter.resolve(this.#current);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  get waiting(): number {
    return this.#waiters.size;
  }

  #follow(): void {
    this.#watcher = this.#store.watch('', (batch) => this.#onBatch(batch), {
      fromRevision: this.#current + 1,
      onError: () => this.#resync(),
    });
  }

  /**
   * The watch cannot continue (its history was compacted while it was away): changes in the
   * gap are unknown, so every group counts as changed at the current revision — each waiter
   * answers now and re-reads — and the watch starts again from there. Once, not a loop: the
   * new watch starts at a revision etcd still has.
   */
  #resync(): void {
    if (this.#stopped) return;
    this.#store.revision().then(
      (rev) => {
        if (this.#stopped) return;
        this.#resyncFailures = 0;
        this.resyncs += 1;
        this.#baseline = Math.max(this.#baseline, rev);
        this.#current = Math.max(this.#current, rev);
        for (const w of [...this.#waiters]) w.resolve(this.#current);
        this.#follow();
      },
      () => {
        // Store away: try again with backoff and jitter, capped at 5 s.
        this.#resyncFailures = Math.min(this.#resyncFailures + 1, 10);
        const delay = Math.random() * Math.min(5_000, 100 * 2 ** this.#resyncFailures);
        this.#resyncTimer = setTimeout(() => this.#resync(), delay);
        this.#resyncTimer.unref();
      },
    );
  }

  #onBatch(batch: WatchBatch): void {
    this.#current = Math.max(this.#current, batch.revision);
    const touched = new Set<string>();
    for (const ev of batch.events) {
      for (const g of groupsOfKey(ev.kv.key)) touched.add(g);
    }
    for (const g of touched) this.#lastChange.set(g, batch.revision);
    for (const w of this.#waiters) {
      if (batch.revision > w.after && w.groups.some((g) => touched.has(g))) w.resolve(batch.revision);
    }
  }
}
