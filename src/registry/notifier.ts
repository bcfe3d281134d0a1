/**
 * Blocking queries ("answer when something under these prefixes changes after revision N").
 * One store watch feeds every waiter, so thousands of agents waiting cost one map entry each.
 * Changes are tracked per group (a key's first one and two path segments), so a waiter can
 * tell at once whether it already missed a change, without keeping history.
 *
 * A waiter is one small object and its promise: no timer and no AbortController of its own.
 * Waiters whose `wait` ends in the same TIMEOUT_GRAIN_MS share one timer (5,000 agents that
 * connect within a minute make ~600 timers, not 5,000), and a client that goes away is
 * noticed by one 'close' listener on its request. A wait ends at most one grain late.
 */
import type { Store, Watcher, WatchBatch } from '../store/types.js';

/** Waits ending within this share a timer. */
export const TIMEOUT_GRAIN_MS = 100;

interface Waiter {
  readonly groups: readonly string[];
  readonly after: number;
  /** Deadline (ms since the epoch, rounded up to the grain): its bucket in #timeouts. */
  readonly due: number;
  settle: (revision: number) => void;
}

/** What ends a wait early: the request of the client waiting ('close' once it is gone). */
export interface Closable {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export function groupsOfKey(key: string): [string, string] {
  const parts = key.split('/');
  return [parts[0] ?? '', `${parts[0] ?? ''}/${parts[1] ?? ''}`];
}

export class ChangeNotifier {
  readonly #lastChange = new Map<string, number>();
  readonly #waiters = new Set<Waiter>();
  /** Waiters by deadline bucket, with the one timer that ends them. */
  readonly #timeouts = new Map<number, { timer: NodeJS.Timeout; waiters: Set<Waiter> }>();
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
    for (const w of [...this.#waiters]) w.settle(this.#current);
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
   * already known, or with the current revision when `timeoutMs` passes first, or when
   * `closed` closes (the client went away: the caller checks that and answers nothing).
   */
  wait(groups: readonly string[], after: number, timeoutMs: number, closed?: Closable): Promise<number> {
    const known = this.changedAt(groups);
    if (known > after) return Promise.resolve(known);
    // A client ahead of this registry came from one that saw more (the same etcd, a moment
    // ahead), or from a store that was since lost: answer now; its read settles which.
    if (after > this.#current) return Promise.resolve(this.#current);
    // Stopped (the registry is closing): nothing will change any more.
    if (this.#stopped) return Promise.resolve(this.#current);
    return new Promise((resolve) => {
      const onClose = () => waiter.settle(this.#current);
      const waiter: Waiter = {
        groups,
        after,
        due: Math.ceil((Date.now() + timeoutMs) / TIMEOUT_GRAIN_MS) * TIMEOUT_GRAIN_MS,
        settle: (rev) => {
          if (!this.#waiters.delete(waiter)) return;
          this.#untime(waiter);
          closed?.off('close', onClose);
          resolve(rev);
        },
      };
      this.#waiters.add(waiter);
      this.#time(waiter);
      closed?.once('close', onClose);
    });
  }

  #time(w: Waiter): void {
    let bucket = this.#timeouts.get(w.due);
    if (!bucket) {
      const due = w.due;
      const waiters = new Set<Waiter>();
      const timer = setTimeout(
        () => {
          this.#timeouts.delete(due);
          for (const x of waiters) x.settle(this.#current);
        },
        Math.max(0, due - Date.now()),
      );
      bucket = { timer, waiters };
      this.#timeouts.set(due, bucket);
    }
    bucket.waiters.add(w);
  }

  #untime(w: Waiter): void {
    const bucket = this.#timeouts.get(w.due);
    if (!bucket) return;
    bucket.waiters.delete(w);
    if (bucket.waiters.size === 0) {
      clearTimeout(bucket.timer);
      this.#timeouts.delete(w.due);
    }
  }

  get waiting(): number {
    return this.#waiters.size;
  }

  /** Timers running for the waiters' deadlines (one per grain that has waiters): for tests. */
  get timers(): number {
    return this.#timeouts.size;
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
        for (const w of [...this.#waiters]) w.settle(this.#current);
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
      if (batch.revision > w.after && w.groups.some((g) => touched.has(g))) w.settle(batch.revision);
    }
  }
}
