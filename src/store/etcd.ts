/**
 * The store on an etcd cluster, for several registries sharing one mesh. Everything the
 * interface promises is etcd's own behaviour: revisions are etcd's revisions, a txn is one
 * etcd Txn, leases are etcd leases (etcd deletes a lease's keys when it expires), watches are
 * etcd watches from a revision. This module only translates, validates input the way the
 * embedded backends do, and keeps history bounded by compacting.
 *
 * Reads are linearizable and every call carries etcd's require-leader flag, so a registry
 * whose etcd member lost the quorum gets an error (MESH_ERR_STORE_UNAVAILABLE), never an old
 * value presented as current.
 */
import { randomInt } from 'node:crypto';
import type { ICompare, IRequestOp, IResponseOp } from 'etcd3';
import { MeshError } from '../errors/index.js';
import { checkKey, checkPrefix, checkValue } from './keys.js';
import { DEFAULT_ETCD_PREFIX, EtcdCodec } from './etcd-codec.js';
import { EtcdConnection, neverSent, type EtcdConnectionOptions } from './etcd-connection.js';
import { KeepAliveChannel } from './etcd-keepalive.js';
import { EtcdWatch } from './etcd-watch.js';
import { checkLeaseId, checkWatchArgs, closedError, failedWatch, leaseNotFound } from './revisioned-store.js';
import { checkTxnRequest } from './txn-plan.js';
import type {
  Compare,
  KeyValue,
  Lease,
  Op,
  OpResult,
  PutOptions,
  RangeResult,
  Store,
  TxnRequest,
  TxnResult,
  WatchBatch,
  WatchOptions,
  Watcher,
  WriteResult,
} from './types.js';

export interface EtcdStoreOptions extends EtcdConnectionOptions {
  /** Namespace of every key in etcd (default `/meshctl/`). */
  readonly prefix?: string;
  /**
   * Revisions of history kept for watch replay: after writes, this store compacts etcd to
   * `revision - historyLimit + 1` (every registry may; compaction is idempotent). Unset: the
   * store never compacts, and etcd's own --auto-compaction settings decide.
   */
  readonly historyLimit?: number;
  /** Where errors with no caller go (a failed background compaction); default: a warning. */
  readonly onBackgroundError?: (err: MeshError) => void;
}

/** etcd's upper bound on a lease TTL. */
const MAX_TTL_SECONDS = 9_000_000_000;

export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly #conn: EtcdConnection;
  readonly #codec: EtcdCodec;
  readonly #keepAlives: KeepAliveChannel;
  readonly #watches = new Set<EtcdWatch>();
  readonly #historyLimit: number | undefined;
  readonly #onBackgroundError: (err: MeshError) => void;
  /**
   * Highest revision any etcd answer showed this store. A watch "from now" starts right after
   * it: everything the caller saw happen is excluded, nothing after it can be missed.
   */
  #seen = 0;
  /** Lowest revision known to be replayable (compaction only moves it up). */
  #knownCompacted = 1;
  #compacting: Promise<void> | undefined;
  #closed = false;

  private constructor(opts: EtcdStoreOptions) {
    const limit = opts.historyLimit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `store historyLimit must be a positive integer, got ${String(limit)}`,
      );
    }
    const prefix = opts.prefix ?? DEFAULT_ETCD_PREFIX;
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw new MeshError('MESH_ERR_CONFIG', 'the etcd key prefix must be a non-empty string');
    }
    checkPrefix(prefix);
    this.#historyLimit = limit;
    this.#onBackgroundError = opts.onBackgroundError ?? ((err) => process.emitWarning(err));
    this.#conn = new EtcdConnection(opts);
    this.#codec = new EtcdCodec(prefix);
    this.#keepAlives = new KeepAliveChannel(this.#conn);
  }

  /** Connects and checks that etcd answers (a read), so a wrong endpoint fails here, clearly. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(opts);
    try {
      await store.revision();
    } catch (e) {
      await store.close();
      const err = e instanceof MeshError ? e : new MeshError('MESH_ERR_STORE', String(e));
      // Nobody answering shows as whichever of gRPC's errors or the breaker's came first (refused,
      // no connection yet, breaker open): one message says what that means; gRPC's is in details.
      if (neverSent(err.cause ?? e)) {
        throw new MeshError('MESH_ERR_STORE_UNAVAILABLE', `cannot reach etcd at ${opts.endpoints.join(',')}`, {
          cause: e,
          hint: 'Check the endpoint URLs and that etcd runs there: `etcdctl --endpoints URL endpoint health`.',
          details: { error: err.message },
        });
      }
      throw new MeshError(err.code, `cannot use etcd at ${opts.endpoints.join(',')}: ${err.message}`, {
        cause: e,
        hint: err.hint,
      });
    }
    return store;
  }

  get endpoints(): readonly string[] {
    return this.#conn.endpoints;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.#ensureOpen();
    checkKey(key);
    const res = await this.#conn.call('read', () =>
      this.#conn.client.kv.range({ key: this.#codec.key(key) }, this.#conn.unary()),
    );
    this.#saw(res.header.revision);
    const raw = res.kvs[0];
    return raw ? this.#codec.kv(raw) : undefined;
  }

  async range(prefix: string): Promise<RangeResult> {
    this.#ensureOpen();
    checkPrefix(prefix);
    const res = await this.#conn.call('read', () =>
      this.#conn.client.kv.range(this.#codec.range(prefix), this.#conn.unary()),
    );
    return { kvs: res.kvs.map((kv) => this.#codec.kv(kv)), revision: this.#saw(res.header.revision) };
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<WriteResult> {
    const op: Op =
      opts.lease === undefined ? { type: 'put', key, value } : { type: 'put', key, value, lease: opts.lease };
    const r = await this.txn({ compare: [], success: [op] });
    return { revision: r.revision };
  }

  async delete(key: string): Promise<WriteResult & { deleted: number }> {
    return deleted(await this.txn({ compare: [], success: [{ type: 'delete', key }] }));
  }

  async deletePrefix(prefix: string): Promise<WriteResult & { deleted: number }> {
    return deleted(await this.txn({ compare: [], success: [{ type: 'deletePrefix', prefix }] }));
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    this.#ensureOpen();
    const { compares, success, failure } = checkTxnRequest(req);
    const writes = [...success, ...failure].some((op) => op.type !== 'get' && op.type !== 'range');
    const res = await this.#conn.call(writes ? 'write' : 'read', () =>
      this.#conn.client.kv.txn(
        {
          compare: compares.map((c) => this.#compare(c)),
          success: success.map((op) => this.#requestOp(op)),
          failure: failure.map((op) => this.#requestOp(op)),
        },
        this.#conn.unary(),
      ),
    );
    const ops = res.succeeded ? success : failure;
    const revision = this.#saw(res.header.revision);
    const result: TxnResult = {
      succeeded: res.succeeded,
      revision,
      results: res.responses.map((r, i) => this.#opResult(ops[i], r)),
    };
    if (writes) await this.#maybeCompact(revision);
    return result;
  }

  async revision(): Promise<number> {
    this.#ensureOpen();
    const res = await this.#conn.call('read', () =>
      this.#conn.client.kv.range({ key: this.#codec.probeKey(), count_only: true }, this.#conn.unary()),
    );
    return this.#saw(res.header.revision);
  }

  watch(prefix: string, onBatch: (batch: WatchBatch) => void, opts: WatchOptions = {}): Watcher {
    const from = checkWatchArgs(prefix, onBatch, opts);
    if (this.#closed) return failedWatch(opts.onError, closedError());
    const start = { ...opts, fromRevision: from ?? this.#seen + 1 };
    const w = new EtcdWatch(this.#conn, this.#codec, prefix, onBatch, start, (done) => this.#watches.delete(done));
    this.#watches.add(w);
    return w;
  }

  /**
   * etcd has no call that reports its compaction point, but a read at a compacted revision
   * fails: the lowest readable revision is found by binary search from the last one known.
   */
  async compactedRevision(): Promise<number> {
    this.#ensureOpen();
    let hi = await this.revision();
    let lo = Math.min(this.#knownCompacted, hi);
    if (await this.#readableAt(lo)) return lo;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await this.#readableAt(mid)) hi = mid;
      else lo = mid;
    }
    this.#knownCompacted = Math.max(this.#knownCompacted, hi);
    return hi;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.#ensureOpen();
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `lease TTL must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${String(ttlSeconds)}`,
      );
    }
    // etcd's own lease ids use all 63 bits; ours stay safe JavaScript integers.
    for (;;) {
      const id = randomInt(1, 2 ** 48);
      try {
        const res = await this.#conn.call('write', () =>
          this.#conn.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: id }, this.#conn.unary()),
        );
        if (res.error) throw new MeshError('MESH_ERR_STORE', `etcd refused the lease: ${res.error}`);
        return { id, ttl: Number(res.TTL) };
      } catch (e) {
        if (!(e instanceof Error && /lease already exists/.test(e.message))) throw e;
      }
    }
  }

  async keepAlive(id: number): Promise<Lease> {
    this.#ensureOpen();
    checkLeaseId(id);
    // A keep-alive is idempotent, so it is retried like a read.
    const ttl = await this.#conn.call('read', () => this.#keepAlives.once(id));
    if (ttl <= 0) throw leaseNotFound(id);
    return { id, ttl };
  }

  async revokeLease(id: number): Promise<void> {
    this.#ensureOpen();
    checkLeaseId(id);
    await this.#conn.call('write', () => this.#conn.client.leaseClient.leaseRevoke({ ID: id }, this.#conn.unary()));
  }

  async leaseTimeToLive(id: number): Promise<number | undefined> {
    this.#ensureOpen();
    checkLeaseId(id);
    const res = await this.#conn.call('read', () =>
      this.#conn.client.leaseClient.leaseTimeToLive({ ID: id }, this.#conn.unary()),
    );
    const ttl = Number(res.TTL);
    // etcd truncates to whole seconds; a live lease never shows 0.
    return ttl < 0 ? undefined : Math.max(1, ttl);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of [...this.#watches]) w.cancel();
    this.#keepAlives.close();
    await this.#compacting?.catch(() => undefined);
    this.#conn.close();
  }

  #saw(revision: string): number {
    const r = Number(revision);
    if (r > this.#seen) this.#seen = r;
    return r;
  }

  #ensureOpen(): void {
    if (this.#closed) throw closedError();
  }

  async #readableAt(revision: number): Promise<boolean> {
    try {
      await this.#conn.call('read', () =>
        this.#conn.client.kv.range({ key: this.#codec.probeKey(), revision, count_only: true }, this.#conn.unary()),
      );
      return true;
    } catch (e) {
      if (e instanceof MeshError && e.code === 'MESH_ERR_STORE_COMPACTED') return false;
      throw e;
    }
  }

  /**
   * Keeps at least `historyLimit` revisions; compacts in steps of one limit so that
   * compaction runs once per `historyLimit` writes, not on every write.
   */
  async #maybeCompact(revision: number): Promise<void> {
    const limit = this.#historyLimit;
    if (limit === undefined || this.#compacting) return;
    const target = revision - limit + 1;
    if (target - this.#knownCompacted < limit) return;
    this.#compacting = this.#conn
      .call('write', () => this.#conn.client.kv.compact({ revision: target }, this.#conn.unary()))
      .then(
        () => {
          this.#knownCompacted = Math.max(this.#knownCompacted, target);
        },
        (e: unknown) => {
          // Another registry compacted further already: that is the same outcome.
          if (e instanceof MeshError && e.code === 'MESH_ERR_STORE_COMPACTED') {
            this.#knownCompacted = Math.max(this.#knownCompacted, target);
          } else if (!this.#closed) {
            this.#onBackgroundError(e instanceof MeshError ? e : new MeshError('MESH_ERR_STORE', String(e)));
          }
        },
      )
      .finally(() => {
        this.#compacting = undefined;
      });
    await this.#compacting;
  }

  #compare(c: Compare): ICompare {
    const key = this.#codec.key(c.key);
    switch (c.target) {
      case 'exists':
        // etcd has no "exists": a key exists when its createRevision is above 0.
        return { key, target: 'Create', result: c.value ? 'Greater' : 'Equal', create_revision: 0 };
      case 'value':
        return { key, target: 'Value', result: c.op === '=' ? 'Equal' : 'NotEqual', value: Buffer.from(c.value) };
      case 'version':
        return { key, target: 'Version', result: RESULT[c.op], version: c.value };
      case 'createRevision':
        return { key, target: 'Create', result: RESULT[c.op], create_revision: c.value };
      case 'modRevision':
        return { key, target: 'Mod', result: RESULT[c.op], mod_revision: c.value };
    }
  }

  #requestOp(op: Op): IRequestOp {
    switch (op.type) {
      case 'put':
        checkValue(op.value);
        return {
          request_put: {
            key: this.#codec.key(op.key),
            value: Buffer.from(op.value, 'utf8'),
            lease: op.lease ?? 0,
            prev_kv: true,
          },
        };
      case 'delete':
        return { request_delete_range: { key: this.#codec.key(op.key) } };
      case 'deletePrefix':
        return { request_delete_range: this.#codec.range(op.prefix) };
      case 'get':
        return { request_range: { key: this.#codec.key(op.key) } };
      case 'range':
        return { request_range: this.#codec.range(op.prefix) };
    }
  }

  #opResult(op: Op | undefined, r: IResponseOp): OpResult {
    switch (op?.type) {
      case 'put': {
        const prev = r.response_put?.prev_kv;
        return prev ? { type: 'put', prev: this.#codec.kv(prev) } : { type: 'put' };
      }
      case 'delete':
      case 'deletePrefix':
        return { type: 'delete', deleted: Number(r.response_delete_range?.deleted ?? 0) };
      case 'get': {
        const raw = r.response_range?.kvs[0];
        return raw ? { type: 'get', kv: this.#codec.kv(raw) } : { type: 'get' };
      }
      case 'range':
        return { type: 'range', kvs: (r.response_range?.kvs ?? []).map((kv) => this.#codec.kv(kv)) };
      default:
        throw new MeshError('MESH_ERR_INTERNAL', 'etcd answered a txn with more results than ops');
    }
  }
}

const RESULT = { '=': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

function deleted(r: TxnResult): WriteResult & { deleted: number } {
  const first = r.results[0];
  return { revision: r.revision, deleted: first?.type === 'delete' ? first.deleted : 0 };
}
