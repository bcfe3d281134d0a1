/**
 * What the CA issued to each node, and what has been revoked. Every certificate the registry
 * signs for a node (its node certificate and its service leaves) is recorded under
 * `issued/<node>/` until it expires; removing the node moves them all to `revoked/`, where
 * they stay until they expire too (certificates are short-lived, so both lists stay small).
 *
 * The registry refuses a revoked node certificate on every request from an in-memory copy of
 * `revoked/`, kept current by a store watch (so every registry of an HA set sees a removal);
 * sidecars get the revoked leaf serials in their snapshots.
 */
import type { Logger } from '../util/log.js';
import type { Store, Watcher } from '../store/types.js';
import { normalizeSerial } from '../ca/index.js';
import { decode } from './json-store.js';
import { keys, PREFIX } from './keys.js';

export type IssuedKind = 'node' | 'leaf';

export interface IssuedRecord {
  serial: string;
  node: string;
  kind: IssuedKind;
  /** Leaves: the service the leaf names. */
  service?: string;
  notAfter: string;
  issuedAt: string;
}

export interface RevokedRecord extends IssuedRecord {
  revokedAt: string;
  /** Why: the node was removed or replaced, or the service was denied to it. */
  reason: string;
}

/** How often expired records are dropped (certificates live a day by default). */
export const PRUNE_INTERVAL_MS = 10 * 60_000;
const RELOAD_BASE_MS = 500;
const RELOAD_MAX_MS = 30_000;

export class Revocations {
  /** Revoked serial → its certificate's notAfter (ms). */
  readonly #revoked = new Map<string, number>();
  #watcher: Watcher | undefined;
  #reloadTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failures = 0;

  readonly #store: Store;
  readonly #log: Logger | undefined;

  constructor(store: Store, log?: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** Loads the revocation list and follows it. */
  async start(): Promise<void> {
    this.#stopped = false;
    const r = await this.#store.range(PREFIX.revoked);
    this.#revoked.clear();
    for (const kv of r.kvs) this.#remember(decode<RevokedRecord>(kv));
    this.#watcher = this.#store.watch(
      PREFIX.revoked,
      (batch) => {
        for (const ev of batch.events) {
          const serial = ev.kv.key.slice(PREFIX.revoked.length);
          if (ev.type === 'delete') this.#revoked.delete(serial);
          else this.#remember(decode<RevokedRecord>(ev.kv));
        }
      },
      { fromRevision: r.revision + 1, onError: (err) => this.#reloadLater(err) },
    );
    this.#failures = 0;
    if (!this.#pruneTimer) {
      this.#pruneTimer = setInterval(() => {
        this.pruneExpired().catch((e: unknown) =>
          this.#log?.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not drop expired revocations'),
        );
      }, PRUNE_INTERVAL_MS);
      this.#pruneTimer.unref();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#reloadTimer);
    clearInterval(this.#pruneTimer);
    this.#pruneTimer = undefined;
    this.#watcher?.cancel();
    this.#watcher = undefined;
  }

  /** Whether a certificate with this serial has been revoked (and has not yet expired). */
  has(serial: string, now = Date.now()): boolean {
    const notAfter = this.#revoked.get(normalizeSerial(serial));
    return notAfter !== undefined && notAfter > now;
  }

  /** The store write that records an issued certificate, for a caller's own transaction. */
  issuedOp(rec: Omit<IssuedRecord, 'issuedAt'>): { type: 'put'; key: string; value: string } {
    const full: IssuedRecord = { ...rec, serial: normalizeSerial(rec.serial), issuedAt: new Date().toISOString() };
    return { type: 'put', key: keys.issued(rec.node, full.serial), value: JSON.stringify(full) };
  }

  /** Records a certificate the CA just issued to `node`; drops the node's entries that have expired. */
  async recordIssued(rec: Omit<IssuedRecord, 'issuedAt'>): Promise<void> {
    const now = Date.now();
    const mine = await this.#store.range(keys.issuedPrefix(rec.node));
    const expired = mine.kvs.filter((kv) => Date.parse(decode<IssuedRecord>(kv).notAfter) <= now);
    await this.#store.txn({
      compare: [],
      success: [this.issuedOp(rec), ...expired.map((kv) => ({ type: 'delete' as const, key: kv.key }))],
    });
  }

  /**
   * Revokes what was issued to `node` and has not expired: everything, or only the leaves for
   * the services `which` selects. Returns the serials revoked.
   */
  async revokeIssued(node: string, reason: string, which?: (rec: IssuedRecord) => boolean): Promise<string[]> {
    const now = new Date();
    const mine = await this.#store.range(keys.issuedPrefix(node));
    const ops: Array<{ type: 'put'; key: string; value: string } | { type: 'delete'; key: string }> = [];
    const serials: string[] = [];
    for (const kv of mine.kvs) {
      const rec = decode<IssuedRecord>(kv);
      const live = Date.parse(rec.notAfter) > now.getTime();
      if (live && which && !which(rec)) continue;
      ops.push({ type: 'delete', key: kv.key });
      if (!live) continue;
      const revoked: RevokedRecord = { ...rec, revokedAt: now.toISOString(), reason };
      ops.push({ type: 'put', key: keys.revoked(rec.serial), value: JSON.stringify(revoked) });
      serials.push(rec.serial);
    }
    if (ops.length > 0) await this.#store.txn({ compare: [], success: [...ops, ...(await this.#expiredOps(now))] });
    // This registry refuses them from now on, before its own watch hears of the write.
    for (const s of serials) this.#revoked.set(s, Number.MAX_SAFE_INTEGER);
    if (serials.length > 0) this.#log?.info({ node, serials: serials.length, reason }, 'certificates revoked');
    return serials;
  }

  /** The revocation list as sidecars need it: serials of certificates not yet expired. */
  async list(): Promise<{ revision: number; revoked: RevokedRecord[] }> {
    const r = await this.#store.range(PREFIX.revoked);
    const now = Date.now();
    const revoked = r.kvs.map((kv) => decode<RevokedRecord>(kv)).filter((x) => Date.parse(x.notAfter) > now);
    return { revision: r.revision, revoked };
  }

  /**
   * Drops what has expired from both lists: a revoked serial whose certificate is past its
   * NotAfter needs no refusing (TLS refuses it), so the sidecars' lists shrink (the write wakes
   * their blocking queries). Several registries may prune at once; deletes are idempotent.
   */
  async pruneExpired(now = new Date()): Promise<number> {
    const [revoked, issued] = await Promise.all([this.#store.range(PREFIX.revoked), this.#store.range(PREFIX.issued)]);
    const gone = [...revoked.kvs, ...issued.kvs]
      .filter((kv) => Date.parse(decode<IssuedRecord>(kv).notAfter) <= now.getTime())
      .map((kv) => ({ type: 'delete' as const, key: kv.key }));
    if (gone.length === 0) return 0;
    // etcd takes at most 128 operations per transaction by default.
    for (let i = 0; i < gone.length; i += 100) await this.#store.txn({ compare: [], success: gone.slice(i, i + 100) });
    this.#log?.info({ records: gone.length }, 'dropped expired certificate records');
    return gone.length;
  }

  async #expiredOps(now: Date): Promise<Array<{ type: 'delete'; key: string }>> {
    const r = await this.#store.range(PREFIX.revoked);
    return r.kvs
      .filter((kv) => Date.parse(decode<RevokedRecord>(kv).notAfter) <= now.getTime())
      .map((kv) => ({ type: 'delete' as const, key: kv.key }));
  }

  #remember(rec: RevokedRecord): void {
    this.#revoked.set(normalizeSerial(rec.serial), Date.parse(rec.notAfter));
  }

  /** The watch broke (history compacted, store closed): read the list afresh after a pause. */
  #reloadLater(err: Error): void {
    if (this.#stopped) return;
    this.#log?.warn({ err: err.message }, 'revocation watch failed; reloading the list');
    this.#watcher = undefined;
    clearTimeout(this.#reloadTimer);
    const delay = Math.min(RELOAD_MAX_MS, RELOAD_BASE_MS * 2 ** this.#failures) * (0.5 + Math.random());
    this.#failures += 1;
    this.#reloadTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.start().catch((e: unknown) => this.#reloadLater(e instanceof Error ? e : new Error(String(e))));
    }, delay);
    this.#reloadTimer.unref();
  }
}
