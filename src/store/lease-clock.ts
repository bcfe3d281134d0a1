/**
 * Lease deadlines and the timer that notices expiry. Deadlines live only in memory, on the
 * monotonic clock (a wall-clock jump must not expire every lease): after a restart every
 * lease starts a full TTL again, as etcd does on a leader change, so nothing about
 * deadlines needs persisting and a keep-alive never waits for a disk write.
 */
import { performance } from 'node:perf_hooks';

const TICK_MS = 100;

export class LeaseClock {
  readonly #leases = new Map<number, { ttl: number; deadline: number }>();
  #timer: NodeJS.Timeout | undefined;

  /** `onExpired` gets the ids past their deadline; it must remove them (via `delete`). */
  readonly #onExpired: (ids: number[]) => void;

  constructor(onExpired: (ids: number[]) => void) {
    this.#onExpired = onExpired;
  }

  /** Starts (or restarts) a lease with a full TTL. */
  set(id: number, ttlSeconds: number): void {
    this.#leases.set(id, { ttl: ttlSeconds, deadline: performance.now() + ttlSeconds * 1000 });
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS).unref();
  }

  /** Whether the lease is known (it may be past its deadline until the next tick reaps it). */
  has(id: number): boolean {
    return this.#leases.has(id);
  }

  ttl(id: number): number | undefined {
    return this.#leases.get(id)?.ttl;
  }

  /** Milliseconds left, or undefined if unknown or already past its deadline. */
  remainingMs(id: number): number | undefined {
    const l = this.#leases.get(id);
    if (!l) return undefined;
    const left = l.deadline - performance.now();
    return left > 0 ? left : undefined;
  }

  delete(id: number): void {
    this.#leases.delete(id);
    if (this.#leases.size === 0) this.stop();
  }

  /** Ids past their deadline, oldest first. */
  expired(): number[] {
    const now = performance.now();
    const out: { id: number; deadline: number }[] = [];
    for (const [id, l] of this.#leases) if (l.deadline <= now) out.push({ id, deadline: l.deadline });
    return out.sort((a, b) => a.deadline - b.deadline).map((x) => x.id);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const ids = this.expired();
    if (ids.length > 0) this.#onExpired(ids);
  }
}
