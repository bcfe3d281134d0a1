/**
 * The etcd-like semantics every embedded backend shares: revisions, txns, watches with
 * history replay, leases and their expiry. A backend only stores and reads rows
 * (`StoreBackend`); it never decides anything, so memory and sqlite behave the same.
 *
 * Everything below runs synchronously between awaits (better-sqlite3 is synchronous), so a
 * txn's compare-and-apply and a watcher's replay-then-register are atomic without locks.
 * That holds because this process is the store's only writer.
 */
import { MeshError, toMeshError } from '../errors/index.js';
import { checkKey, checkPrefix } from './keys.js';
import { LeaseClock } from './lease-clock.js';
import { planTxn, type StateView } from './txn-plan.js';
import type {
  KeyValue,
  Lease,
  PutOptions,
  RangeResult,
  Store,
  TxnRequest,
  TxnResult,
  WatchBatch,
  WatchEvent,
  WatchOptions,
  Watcher,
  WriteResult,
} from './types.js';
import { WatchHub } from './watch-hub.js';

export const DEFAULT_HISTORY_LIMIT = 10_000;
/** etcd's upper bound on a lease TTL. */
const MAX_TTL_SECONDS = 9_000_000_000;

/** What a backend holds when it is opened. */
export interface StoredState {
  readonly revision: number;
  readonly compactedRevision: number;
  /** Highest lease id ever granted, so ids are never reused. */
  readonly lastLeaseId: number;
  readonly leases: readonly Lease[];
}

/** One atomic change; the backend applies all of it or nothing (and throws). */
export interface Commit {
  /** Store revision after the commit. */
  readonly revision: number;
  /** History below this revision may be dropped. */
  readonly compactedRevision: number;
  readonly writes: ReadonlyMap<string, KeyValue | null>;
  /** The revision's events, when the revision moved. */
  readonly batch?: WatchBatch;
  readonly grantLease?: Lease;
  readonly revokeLease?: number;
}

export interface StoreBackend {
  load(): StoredState;
  get(key: string): KeyValue | undefined;
  /** Keys starting with prefix, in UTF-8 byte order. */
  range(prefix: string): KeyValue[];
  leaseKeys(leaseId: number): string[];
  /** Kept history from `fromRevision` on, filtered to the prefix, one batch per revision. */
  history(prefix: string, fromRevision: number): WatchBatch[];
  /** Applies the commit atomically; for a durable backend it is on disk when this returns. */
  commit(c: Commit): void;
  close(): void;
}

export interface RevisionedStoreOptions {
  /** How many revisions of history watches can replay (default 10,000). */
  readonly historyLimit?: number;
  /** Where errors with no caller go (a failed lease expiry); default: a process warning. */
  readonly onBackgroundError?: (err: MeshError) => void;
}

export abstract class RevisionedStore implements Store {
  abstract readonly kind: Store['kind'];

  #rev: number;
  #compacted: number;
  #lastLeaseId: number;
  #closed = false;
  readonly #historyLimit: number;
  readonly #hub = new WatchHub();
  readonly #clock: LeaseClock;
  readonly #view: StateView;
  readonly #onBackgroundError: (err: MeshError) => void;

  readonly #backend: StoreBackend;

  protected constructor(backend: StoreBackend, opts: RevisionedStoreOptions = {}) {
    this.#backend = backend;
    const limit = opts.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `store historyLimit must be a positive integer, got ${String(limit)}`,
      );
    }
    this.#historyLimit = limit;
    this.#onBackgroundError = opts.onBackgroundError ?? ((err) => process.emitWarning(err));
    this.#clock = new LeaseClock((ids) => this.#expire(ids));
    this.#view = {
      get: (key) => backend.get(key),
      range: (prefix) => backend.range(prefix),
      leaseExists: (id) => this.#clock.has(id),
    };
    const state = backend.load();
    this.#rev = state.revision;
    this.#compacted = state.compactedRevision;
    this.#lastLeaseId = state.lastLeaseId;
    // Every lease found at open gets a full TTL, so its holder has time to keep it alive.
    for (const lease of state.leases) this.#clock.set(lease.id, lease.ttl);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    return this.#run(() => {
      checkKey(key);
      return this.#backend.get(key);
    });
  }

  async range(prefix: string): Promise<RangeResult> {
    return this.#run(() => {
      checkPrefix(prefix);
      return { kvs: this.#backend.range(prefix), revision: this.#rev };
    });
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<WriteResult> {
    return this.#run(() => {
      const op =
        opts.lease === undefined
          ? { type: 'put' as const, key, value }
          : { type: 'put' as const, key, value, lease: opts.lease };
      return { revision: this.#write({ compare: [], success: [op] }).revision };
    });
  }

  async delete(key: string): Promise<WriteResult & { deleted: number }> {
    return this.#run(() => this.#deleted(this.#write({ compare: [], success: [{ type: 'delete', key }] })));
  }

  async deletePrefix(prefix: string): Promise<WriteResult & { deleted: number }> {
    return this.#run(() => this.#deleted(this.#write({ compare: [], success: [{ type: 'deletePrefix', prefix }] })));
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    return this.#run(() => this.#write(req));
  }

  async revision(): Promise<number> {
    return this.#run(() => this.#rev);
  }

  async compactedRevision(): Promise<number> {
    return this.#run(() => this.#compacted);
  }

  watch(prefix: string, onBatch: (batch: WatchBatch) => void, opts: WatchOptions = {}): Watcher {
    const from = checkWatchArgs(prefix, onBatch, opts);
    if (this.#closed) return failedWatch(opts.onError, closedError());
    if (from === undefined) return this.#hub.add(prefix, onBatch, [], this.#rev + 1);
    if (from < this.#compacted) {
      return failedWatch(
        opts.onError,
        new MeshError(
          'MESH_ERR_STORE_COMPACTED',
          `revision ${from} is compacted; the oldest revision the store can replay is ${this.#compacted}`,
          { details: { fromRevision: from, compactedRevision: this.#compacted } },
        ),
      );
    }
    let replay: WatchBatch[];
    try {
      replay = from <= this.#rev ? this.#backend.history(prefix, from) : [];
    } catch (e) {
      return failedWatch(opts.onError, toMeshError(e, 'MESH_ERR_STORE'));
    }
    // Same synchronous step as the history read: no commit can fall between the two.
    return this.#hub.add(prefix, onBatch, replay, Math.max(from, this.#rev + 1));
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    return this.#run(() => {
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
        throw new MeshError(
          'MESH_ERR_INVALID_ARGUMENT',
          `lease TTL must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${String(ttlSeconds)}`,
        );
      }
      this.#reapExpired();
      const lease: Lease = { id: this.#lastLeaseId + 1, ttl: ttlSeconds };
      this.#commit(new Map(), [], { grantLease: lease });
      this.#lastLeaseId = lease.id;
      this.#clock.set(lease.id, lease.ttl);
      return lease;
    });
  }

  async keepAlive(id: number): Promise<Lease> {
    return this.#run(() => {
      checkLeaseId(id);
      this.#reapExpired();
      const ttl = this.#clock.ttl(id);
      if (ttl === undefined) throw leaseNotFound(id);
      this.#clock.set(id, ttl);
      return { id, ttl };
    });
  }

  async revokeLease(id: number): Promise<void> {
    return this.#run(() => {
      checkLeaseId(id);
      this.#reapExpired();
      if (!this.#clock.has(id)) throw leaseNotFound(id);
      this.#revoke(id);
    });
  }

  async leaseTimeToLive(id: number): Promise<number | undefined> {
    return this.#run(() => {
      checkLeaseId(id);
      const ms = this.#clock.remainingMs(id);
      // Whole seconds rounded up, as etcd reports them; a live lease never shows 0.
      return ms === undefined ? undefined : Math.ceil(ms / 1000);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.stop();
    this.#hub.closeAll();
    try {
      this.#backend.close();
    } catch (e) {
      throw toMeshError(e, 'MESH_ERR_STORE');
    }
  }

  /** Runs an operation, refusing after close and reporting backend failures as MESH_ERR_STORE. */
  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(toMeshError(e, 'MESH_ERR_STORE'));
    }
  }

  #write(req: TxnRequest): TxnResult {
    // Writes first retire leases past their deadline, so no write sees a lease that is due.
    this.#reapExpired();
    const plan = planTxn(this.#view, req, this.#rev);
    this.#commit(plan.writes, plan.events, {});
    return { succeeded: plan.succeeded, revision: this.#rev, results: plan.results };
  }

  #deleted(r: TxnResult): WriteResult & { deleted: number } {
    const first = r.results[0];
    return { revision: r.revision, deleted: first?.type === 'delete' ? first.deleted : 0 };
  }

  /** Persists a change, then (only once it is stored) moves the revision and tells watchers. */
  #commit(
    writes: ReadonlyMap<string, KeyValue | null>,
    events: WatchEvent[],
    leases: { grantLease?: Lease; revokeLease?: number },
  ): void {
    const moved = events.length > 0;
    if (!moved && leases.grantLease === undefined && leases.revokeLease === undefined) return;
    const revision = moved ? this.#rev + 1 : this.#rev;
    const compactedRevision = Math.max(this.#compacted, revision - this.#historyLimit + 1);
    const batch: WatchBatch | undefined = moved ? { revision, events } : undefined;
    this.#backend.commit({ revision, compactedRevision, writes, ...(batch ? { batch } : {}), ...leases });
    this.#rev = revision;
    this.#compacted = compactedRevision;
    if (batch) this.#hub.publish(batch);
  }

  /** Deletes the lease and its keys in one revision. */
  #revoke(id: number): void {
    const keys = this.#backend.leaseKeys(id);
    const plan = planTxn(
      this.#view,
      { compare: [], success: keys.map((key) => ({ type: 'delete' as const, key })) },
      this.#rev,
    );
    this.#commit(plan.writes, plan.events, { revokeLease: id });
    this.#clock.delete(id);
  }

  #reapExpired(): void {
    for (const id of this.#clock.expired()) this.#revoke(id);
  }

  #expire(ids: number[]): void {
    if (this.#closed) return;
    for (const id of ids) {
      if (!this.#clock.has(id)) continue;
      try {
        this.#revoke(id);
      } catch (e) {
        // Left in place: the next tick tries again.
        this.#onBackgroundError(toMeshError(e, 'MESH_ERR_STORE'));
      }
    }
  }
}

/** Validates watch() arguments the same way on every backend; returns fromRevision. */
export function checkWatchArgs(prefix: string, onBatch: unknown, opts: WatchOptions): number | undefined {
  checkPrefix(prefix);
  if (typeof onBatch !== 'function') {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', 'store watch needs a callback');
  }
  const from = opts.fromRevision;
  if (from !== undefined && (!Number.isSafeInteger(from) || from < 1)) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `store watch fromRevision must be a positive integer, got ${String(from)}`,
    );
  }
  return from;
}

export function checkLeaseId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `lease id must be a positive integer, got ${String(id)}`);
  }
}

export function leaseNotFound(id: number): MeshError {
  return new MeshError('MESH_ERR_LEASE_NOT_FOUND', `lease ${id} not found (expired or revoked)`);
}

export function closedError(): MeshError {
  return new MeshError('MESH_ERR_STORE', 'the store is closed', {
    hint: 'This is a bug in the caller: it used the store after closing it.',
  });
}

/** A watcher that never delivers; its onError runs once, later, unless cancelled first. */
export function failedWatch(onError: ((err: Error) => void) | undefined, err: MeshError): Watcher {
  let cancelled = false;
  queueMicrotask(() => {
    if (cancelled || !onError) return;
    try {
      onError(err);
    } catch {
      // As with batches, a throwing callback must not become an unhandled error.
    }
  });
  return {
    cancel: () => {
      cancelled = true;
    },
  };
}
