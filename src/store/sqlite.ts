/**
 * The embedded store: one SQLite file (better-sqlite3), WAL, synchronous=FULL so a write is
 * fsynced before it is acknowledged and survives a crash of the process or the host.
 * Each write txn is one SQLite transaction holding its key rows, the new revision, its
 * events (the bounded watch history) and any lease change.
 *
 * The file is opened in EXCLUSIVE locking mode: watches are served in-process, so a second
 * process writing the same file would go unseen by them. A second opener fails fast instead.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MeshError, toMeshError } from '../errors/index.js';
import { prefixEnd } from './keys.js';
import {
  RevisionedStore,
  type Commit,
  type RevisionedStoreOptions,
  type StoreBackend,
  type StoredState,
} from './revisioned-store.js';
import type { KeyValue, Lease, WatchBatch, WatchEvent } from './types.js';

export interface SqliteStoreOptions extends RevisionedStoreOptions {
  /** The database file; made (mode 0600) if missing. Its directory must exist. */
  readonly path: string;
  /** How long to wait for a lock held by another process before failing, in ms (default 1000). */
  readonly busyTimeoutMs?: number;
}

export class SqliteStore extends RevisionedStore {
  readonly kind = 'sqlite' as const;

  private constructor(backend: SqliteBackend, opts: SqliteStoreOptions) {
    super(backend, opts);
  }

  static async open(opts: SqliteStoreOptions): Promise<SqliteStore> {
    const backend = SqliteBackend.open(opts.path, opts.busyTimeoutMs ?? 1000);
    try {
      return new SqliteStore(backend, opts);
    } catch (e) {
      backend.close();
      throw toMeshError(e, 'MESH_ERR_STORE');
    }
  }
}

/** 'MESH' — marks the file as a meshctl store, so we never write into someone else's database. */
const APPLICATION_ID = 0x4d455348;
const SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
  CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO meta (name, value) VALUES ('revision', 1), ('compacted_revision', 1), ('last_lease_id', 0);
  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX kv_by_lease ON kv (lease);
  CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
  -- Watch history: one row per event, JSON of the WatchEvent; key kept apart for prefix ranges.
  CREATE TABLE events (
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (revision, seq)
  ) WITHOUT ROWID;
`;

interface KvRow {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: number;
}

const KV_COLUMNS = 'key, value, create_revision, mod_revision, version, lease';

/** A statement per prefix shape: '' (everything), bounded [prefix, end), or open-ended. */
class PrefixQuery<Row> {
  readonly #all;
  readonly #bounded;
  readonly #from;

  constructor(db: Database.Database, select: string, where: string, order: string) {
    const and = where ? `${where} AND ` : '';
    this.#all = db.prepare<unknown[], Row>(`${select} ${where ? `WHERE ${where}` : ''} ORDER BY ${order}`);
    this.#bounded = db.prepare<unknown[], Row>(`${select} WHERE ${and}key >= ? AND key < ? ORDER BY ${order}`);
    this.#from = db.prepare<unknown[], Row>(`${select} WHERE ${and}key >= ? ORDER BY ${order}`);
  }

  /** `lead` binds the `where` clause's own parameters. */
  run(prefix: string, ...lead: number[]): Row[] {
    if (prefix === '') return this.#all.all(...lead);
    // A range on the key's bytes, not LIKE: LIKE treats % and _ as wildcards and folds case.
    const end = prefixEnd(prefix);
    return end === undefined ? this.#from.all(...lead, prefix) : this.#bounded.all(...lead, prefix, end);
  }
}

class SqliteBackend implements StoreBackend {
  readonly #getStmt;
  readonly #rangeQuery;
  readonly #historyQuery;
  readonly #leaseKeysStmt;
  readonly #upsertStmt;
  readonly #deleteStmt;
  readonly #insertEventStmt;
  readonly #compactStmt;
  readonly #setMetaStmt;
  readonly #insertLeaseStmt;
  readonly #deleteLeaseStmt;
  readonly #commitTxn;
  #compacted = 0;

  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#getStmt = db.prepare<[string], KvRow>(`SELECT ${KV_COLUMNS} FROM kv WHERE key = ?`);
    this.#rangeQuery = new PrefixQuery<KvRow>(db, `SELECT ${KV_COLUMNS} FROM kv`, '', 'key');
    this.#historyQuery = new PrefixQuery<{ revision: number; event: string }>(
      db,
      'SELECT revision, event FROM events',
      'revision >= ?',
      'revision, seq',
    );
    this.#leaseKeysStmt = db.prepare<[number], string>('SELECT key FROM kv WHERE lease = ? ORDER BY key').pluck();
    this.#upsertStmt = db.prepare<[string, string, number, number, number, number]>(
      `INSERT OR REPLACE INTO kv (${KV_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.#deleteStmt = db.prepare<[string]>('DELETE FROM kv WHERE key = ?');
    this.#insertEventStmt = db.prepare<[number, number, string, string]>(
      'INSERT INTO events (revision, seq, key, event) VALUES (?, ?, ?, ?)',
    );
    this.#compactStmt = db.prepare<[number]>('DELETE FROM events WHERE revision < ?');
    this.#setMetaStmt = db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE name = ?');
    this.#insertLeaseStmt = db.prepare<[number, number]>('INSERT INTO leases (id, ttl) VALUES (?, ?)');
    this.#deleteLeaseStmt = db.prepare<[number]>('DELETE FROM leases WHERE id = ?');
    this.#commitTxn = db.transaction((c: Commit) => this.#apply(c));
  }

  static open(path: string, busyTimeoutMs: number): SqliteBackend {
    let db: Database.Database | undefined;
    try {
      createPrivateFile(path);
      db = new Database(path, { timeout: busyTimeoutMs });
      // Before the first WAL access, so no shared-memory index is made and the lock is ours alone.
      db.pragma('locking_mode = EXCLUSIVE');
      identify(db, path);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (journal_mode is ${String(mode)})`);
      db.pragma('synchronous = FULL');
      migrate(db, path);
      return new SqliteBackend(db);
    } catch (e) {
      try {
        db?.close();
      } catch {
        // Already failing; the first error is the one to report.
      }
      throw openError(path, e);
    }
  }

  load(): StoredState {
    const meta = new Map(
      this.#db
        .prepare<[], { name: string; value: number }>('SELECT name, value FROM meta')
        .all()
        .map((r) => [r.name, r.value]),
    );
    const leases = this.#db.prepare<[], Lease>('SELECT id, ttl FROM leases ORDER BY id').all();
    const revision = meta.get('revision');
    const compactedRevision = meta.get('compacted_revision');
    const lastLeaseId = meta.get('last_lease_id');
    if (revision === undefined || compactedRevision === undefined || lastLeaseId === undefined) {
      throw new MeshError('MESH_ERR_STORE', `store file ${this.#db.name} is damaged: its meta table is incomplete`);
    }
    this.#compacted = compactedRevision;
    return { revision, compactedRevision, lastLeaseId, leases };
  }

  get(key: string): KeyValue | undefined {
    const row = this.#getStmt.get(key);
    return row ? toKeyValue(row) : undefined;
  }

  range(prefix: string): KeyValue[] {
    return this.#rangeQuery.run(prefix).map(toKeyValue);
  }

  leaseKeys(leaseId: number): string[] {
    return this.#leaseKeysStmt.all(leaseId);
  }

  history(prefix: string, fromRevision: number): WatchBatch[] {
    const out: { revision: number; events: WatchEvent[] }[] = [];
    for (const row of this.#historyQuery.run(prefix, fromRevision)) {
      const event = JSON.parse(row.event) as WatchEvent;
      const last = out[out.length - 1];
      if (last && last.revision === row.revision) last.events.push(event);
      else out.push({ revision: row.revision, events: [event] });
    }
    return out;
  }

  commit(c: Commit): void {
    this.#commitTxn.immediate(c);
    // Only once committed: a rolled-back commit leaves our copy in step with the file.
    this.#compacted = c.compactedRevision;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #apply(c: Commit): void {
    for (const [key, kv] of c.writes) {
      if (kv === null) this.#deleteStmt.run(key);
      else this.#upsertStmt.run(kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease);
    }
    const batch = c.batch;
    if (batch) {
      batch.events.forEach((e, seq) => this.#insertEventStmt.run(batch.revision, seq, e.kv.key, JSON.stringify(e)));
      this.#setMetaStmt.run(c.revision, 'revision');
    }
    if (c.compactedRevision !== this.#compacted) {
      this.#compactStmt.run(c.compactedRevision);
      this.#setMetaStmt.run(c.compactedRevision, 'compacted_revision');
    }
    if (c.grantLease) {
      this.#insertLeaseStmt.run(c.grantLease.id, c.grantLease.ttl);
      this.#setMetaStmt.run(c.grantLease.id, 'last_lease_id');
    }
    if (c.revokeLease !== undefined) this.#deleteLeaseStmt.run(c.revokeLease);
  }
}

/**
 * Makes the file here rather than leaving it to SQLite, so it gets mode 0600 (it holds token
 * hashes; SQLite gives the WAL file the same mode), and fsyncs the directory so the new
 * file's name survives a host crash (SQLite does that itself only for its WAL file).
 */
function createPrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  closeSync(fd);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function toKeyValue(r: KvRow): KeyValue {
  return Object.freeze({
    key: r.key,
    value: r.value,
    createRevision: r.create_revision,
    modRevision: r.mod_revision,
    version: r.version,
    lease: r.lease,
  });
}

/**
 * Whether the file is new (no tables) or a store of ours of this schema version; anything
 * else is refused before we change a byte of it.
 */
function identify(db: Database.Database, path: string): 'new' | 'ours' {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId === 0 && version === 0) {
    const tables = db.prepare<[], number>("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get() ?? 0;
    if (tables === 0) return 'new';
  }
  if (appId !== APPLICATION_ID) {
    throw new MeshError('MESH_ERR_STORE', `${path} is an SQLite database of some other program, not a meshctl store`, {
      hint: 'Point the registry at its own store file (or an empty path); this one was left untouched.',
    });
  }
  if (version !== SCHEMA_VERSION) {
    throw new MeshError(
      'MESH_ERR_STORE',
      `${path} has store schema version ${version}; this meshctl reads version ${SCHEMA_VERSION}`,
      {
        hint: 'Run the meshctl version that wrote this store, or restore a backup made for this version.',
      },
    );
  }
  return 'ours';
}

/** Creates the schema in a new file. */
function migrate(db: Database.Database, path: string): void {
  // EXCLUSIVE takes the write lock now, so a second opener fails here and not on its first write.
  db.transaction(() => {
    if (identify(db, path) === 'ours') return;
    db.exec(SCHEMA_V1);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).exclusive();
}

function openError(path: string, e: unknown): MeshError {
  if (e instanceof MeshError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_BUSY') {
    return new MeshError('MESH_ERR_STORE', `store file ${path} is in use by another process`, {
      cause: e,
      hint: 'Only one registry may use a store file: stop the other one (is `meshctl registry` already running on this data dir?).',
    });
  }
  if (code === 'SQLITE_NOTADB') {
    return new MeshError('MESH_ERR_STORE', `${path} is not a meshctl store (not an SQLite database)`, { cause: e });
  }
  if (code === 'ENOENT') {
    return new MeshError('MESH_ERR_STORE', `cannot open store file ${path}: its directory does not exist`, {
      cause: e,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new MeshError('MESH_ERR_STORE', `cannot open store file ${path}: ${message}`, { cause: e });
}
