/**
 * The registry's storage, modelled on etcd's v3 API so that an etcd backend can sit behind
 * it unchanged: one global revision bumped by every write, revisioned key/values, prefix
 * range, compare-and-swap transactions, prefix watches from a revision, and leases whose
 * expiry deletes the keys attached to them.
 *
 * Keys and values are strings (the registry stores JSON). Revisions start at 1 on an empty
 * store and grow by exactly one per write transaction (a txn with several ops is one revision).
 */

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Revision of the write that created this key (since its last delete). */
  readonly createRevision: number;
  /** Revision of the last write to this key. */
  readonly modRevision: number;
  /** Number of writes since creation; 1 after the first put. */
  readonly version: number;
  /** Lease the key is attached to; 0 for none. */
  readonly lease: number;
}

export interface RangeResult {
  readonly kvs: KeyValue[];
  /** Store revision at which the read was made. */
  readonly revision: number;
}

export interface PutOptions {
  /** Attach the key to this lease (it must exist). */
  readonly lease?: number;
}

export interface WriteResult {
  readonly revision: number;
}

/** Compare on one key, as etcd's Compare. A missing key has version/createRevision/modRevision 0 and value undefined. */
export type Compare =
  | {
      readonly key: string;
      readonly target: 'version' | 'createRevision' | 'modRevision';
      readonly op: '=' | '!=' | '<' | '>';
      readonly value: number;
    }
  | { readonly key: string; readonly target: 'value'; readonly op: '=' | '!='; readonly value: string }
  | { readonly key: string; readonly target: 'exists'; readonly value: boolean };

export type Op =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: number }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'deletePrefix'; readonly prefix: string }
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'range'; readonly prefix: string };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly Op[];
  readonly failure?: readonly Op[];
}

export type OpResult =
  | { readonly type: 'put'; readonly prev?: KeyValue }
  | { readonly type: 'delete'; readonly deleted: number }
  | { readonly type: 'get'; readonly kv?: KeyValue }
  | { readonly type: 'range'; readonly kvs: KeyValue[] };

export interface TxnResult {
  readonly succeeded: boolean;
  /** Revision after the txn (unchanged when the taken branch had no writes). */
  readonly revision: number;
  readonly results: OpResult[];
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  /** For a delete: the key with value '' and modRevision = the delete's revision. */
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

export interface WatchBatch {
  /** Revision all events in the batch belong to (one write txn). */
  readonly revision: number;
  readonly events: WatchEvent[];
}

export interface WatchOptions {
  /** Deliver events with revision >= fromRevision (history replay first); default: only future events. */
  readonly fromRevision?: number;
  /** Called once if the watch cannot continue (e.g. fromRevision is compacted: MESH_ERR_STORE_COMPACTED). */
  readonly onError?: (err: Error) => void;
}

export interface Watcher {
  cancel(): void;
}

export interface Lease {
  readonly id: number;
  /** Granted TTL in seconds. */
  readonly ttl: number;
}

export interface Store {
  /** Backend name, for logs and `meshctl status`. */
  readonly kind: 'memory' | 'sqlite' | 'etcd';

  get(key: string): Promise<KeyValue | undefined>;
  /** All keys starting with prefix ('' for all), sorted by key. */
  range(prefix: string): Promise<RangeResult>;
  put(key: string, value: string, opts?: PutOptions): Promise<WriteResult>;
  /** Deletes one key; revision is unchanged if it did not exist. */
  delete(key: string): Promise<WriteResult & { deleted: number }>;
  deletePrefix(prefix: string): Promise<WriteResult & { deleted: number }>;
  txn(req: TxnRequest): Promise<TxnResult>;
  /** Current revision. */
  revision(): Promise<number>;

  /**
   * Watch keys with the prefix. Batches arrive in revision order, each write txn's events
   * together; no revision is skipped or repeated for one watcher.
   */
  watch(prefix: string, onBatch: (batch: WatchBatch) => void, opts?: WatchOptions): Watcher;
  /** Oldest revision still replayable by watch (history before it was compacted). */
  compactedRevision(): Promise<number>;

  grantLease(ttlSeconds: number): Promise<Lease>;
  /** Refreshes the lease to its full TTL; MESH_ERR_LEASE_NOT_FOUND if expired or revoked. */
  keepAlive(id: number): Promise<Lease>;
  /** Revokes the lease and deletes its keys in one revision. */
  revokeLease(id: number): Promise<void>;
  /** Remaining seconds, or undefined if not found. */
  leaseTimeToLive(id: number): Promise<number | undefined>;

  /** Stops timers and closes files; pending watchers are cancelled. */
  close(): Promise<void>;
}
