/**
 * Fans committed batches out to prefix watchers. Each watcher has its own queue, drained on
 * a microtask, so a callback never runs inside a write (it may call the store freely) and a
 * slow or throwing callback cannot hold up the writer or other watchers.
 *
 * No skipped, no doubled revisions: a watcher is registered in the same synchronous step in
 * which its history replay is read, so every later commit reaches it live and every earlier
 * one came from the replay; `nextRevision` drops anything already queued.
 */
import type { WatchBatch, WatchEvent, Watcher } from './types.js';

export class WatchHub {
  readonly #watchers = new Set<PrefixWatcher>();

  /**
   * Registers a watcher. `replay` holds the history batches (already filtered to the prefix)
   * to deliver first; `nextRevision` is the first revision wanted from live commits.
   */
  add(prefix: string, onBatch: (batch: WatchBatch) => void, replay: WatchBatch[], nextRevision: number): Watcher {
    const w = new PrefixWatcher(prefix, onBatch, (x) => this.#watchers.delete(x));
    for (const batch of replay) w.offer(batch.revision, batch.events);
    w.skipBefore(nextRevision);
    this.#watchers.add(w);
    return w;
  }

  /** Hands one committed revision's events to every watcher whose prefix they touch. */
  publish(batch: WatchBatch): void {
    for (const w of this.#watchers) w.offer(batch.revision, batch.events);
  }

  closeAll(): void {
    for (const w of [...this.#watchers]) w.cancel();
  }

  get size(): number {
    return this.#watchers.size;
  }
}

class PrefixWatcher implements Watcher {
  #queue: WatchBatch[] = [];
  #scheduled = false;
  #cancelled = false;
  /** Lowest revision still wanted; raised past every batch taken, so none comes twice. */
  #nextRevision = 0;

  readonly #prefix: string;
  readonly #onBatch: (batch: WatchBatch) => void;
  readonly #onCancel: (w: PrefixWatcher) => void;

  constructor(prefix: string, onBatch: (batch: WatchBatch) => void, onCancel: (w: PrefixWatcher) => void) {
    this.#prefix = prefix;
    this.#onBatch = onBatch;
    this.#onCancel = onCancel;
  }

  skipBefore(revision: number): void {
    this.#nextRevision = Math.max(this.#nextRevision, revision);
  }

  offer(revision: number, events: readonly WatchEvent[]): void {
    if (this.#cancelled || revision < this.#nextRevision) return;
    // A fresh array per watcher, so a callback that mutates its batch harms nobody else.
    const mine = this.#prefix === '' ? [...events] : events.filter((e) => e.kv.key.startsWith(this.#prefix));
    if (mine.length === 0) return;
    this.#nextRevision = revision + 1;
    this.#queue.push({ revision, events: mine });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#drain());
    }
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#queue = [];
    this.#onCancel(this);
  }

  #drain(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      // Take the whole queue: batches offered by a callback land in a new one, in order.
      const batches = this.#queue;
      this.#queue = [];
      for (const batch of batches) {
        if (this.#cancelled) return;
        try {
          this.#onBatch(batch);
        } catch {
          // A watcher's own bug must not break the store or other watchers; it keeps its stream.
        }
      }
    }
  }
}
