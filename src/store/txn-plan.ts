/**
 * Works out what one write txn does, without touching storage: compares are evaluated on
 * the current state, then the chosen branch's ops run in order against an overlay of the
 * pending writes (so a get after a put in the same txn sees the put). The backend then
 * applies the resulting writes atomically, or nothing at all if planning threw — this is
 * what makes a txn all-or-nothing on every backend.
 */
import { MeshError } from '../errors/index.js';
import { checkCompare, evaluateCompare } from './compare.js';
import { checkKey, checkPrefix, checkValue, compareKeys } from './keys.js';
import type { KeyValue, Op, OpResult, TxnRequest, WatchEvent } from './types.js';

/** Read access to the committed state a txn is planned against. */
export interface StateView {
  get(key: string): KeyValue | undefined;
  /** Keys starting with prefix, in byte order. */
  range(prefix: string): KeyValue[];
  leaseExists(id: number): boolean;
}

export interface TxnPlan {
  readonly succeeded: boolean;
  readonly results: OpResult[];
  /** The revision the txn's writes carry: current + 1 (only used if there are events). */
  readonly revision: number;
  /** Effective changes in op order; empty means the store does not change. */
  readonly events: WatchEvent[];
  /** Final state of every written key: the new KeyValue, or null when deleted. */
  readonly writes: ReadonlyMap<string, KeyValue | null>;
}

/**
 * Checks a txn's shape (compares and both branches) as etcd does, so a bad txn fails whichever
 * way it goes, on every backend. Returns the three lists with defaults filled in.
 */
export function checkTxnRequest(req: TxnRequest): {
  compares: TxnRequest['compare'];
  success: readonly Op[];
  failure: readonly Op[];
} {
  const compares = req?.compare ?? [];
  const success = req?.success ?? [];
  const failure = req?.failure ?? [];
  if (!Array.isArray(compares) || !Array.isArray(success) || !Array.isArray(failure)) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', 'store txn needs compare, success and failure arrays');
  }
  compares.forEach(checkCompare);
  checkBranch(success);
  checkBranch(failure);
  return { compares, success, failure };
}

export function planTxn(base: StateView, req: TxnRequest, currentRevision: number): TxnPlan {
  const { compares, success, failure } = checkTxnRequest(req);
  const succeeded = compares.every((c) => evaluateCompare(c, base.get(c.key)));
  const revision = currentRevision + 1;
  const overlay = new Overlay(base);
  const events: WatchEvent[] = [];
  const results: OpResult[] = [];

  for (const op of succeeded ? success : failure) {
    switch (op.type) {
      case 'put': {
        const lease = op.lease ?? 0;
        if (lease !== 0 && !base.leaseExists(lease)) {
          throw new MeshError('MESH_ERR_LEASE_NOT_FOUND', `lease ${lease} not found (expired or revoked)`);
        }
        const prev = overlay.get(op.key);
        const kv: KeyValue = Object.freeze({
          key: op.key,
          value: op.value,
          createRevision: prev ? prev.createRevision : revision,
          modRevision: revision,
          version: prev ? prev.version + 1 : 1,
          lease,
        });
        overlay.set(op.key, kv);
        events.push(Object.freeze(prev ? { type: 'put', kv, prevKv: prev } : { type: 'put', kv }));
        results.push(prev ? { type: 'put', prev } : { type: 'put' });
        break;
      }
      case 'delete': {
        const prev = overlay.get(op.key);
        if (prev) {
          overlay.set(op.key, null);
          events.push(deleteEvent(prev, revision));
        }
        results.push({ type: 'delete', deleted: prev ? 1 : 0 });
        break;
      }
      case 'deletePrefix': {
        const gone = overlay.range(op.prefix);
        for (const prev of gone) {
          overlay.set(prev.key, null);
          events.push(deleteEvent(prev, revision));
        }
        results.push({ type: 'delete', deleted: gone.length });
        break;
      }
      case 'get': {
        const kv = overlay.get(op.key);
        results.push(kv ? { type: 'get', kv } : { type: 'get' });
        break;
      }
      case 'range':
        results.push({ type: 'range', kvs: overlay.range(op.prefix) });
        break;
    }
  }
  return { succeeded, results, revision, events, writes: overlay.writes };
}

function deleteEvent(prev: KeyValue, revision: number): WatchEvent {
  const kv: KeyValue = Object.freeze({
    key: prev.key,
    value: '',
    createRevision: 0,
    modRevision: revision,
    version: 0,
    lease: 0,
  });
  return Object.freeze({ type: 'delete', kv, prevKv: prev });
}

/**
 * Validates a branch's ops. Like etcd, a branch may not write one key twice (two puts, or a
 * put inside a delete's range): the result would depend on op order in ways etcd refuses,
 * and the registry must run unchanged on etcd.
 */
function checkBranch(ops: readonly Op[]): void {
  const puts = new Set<string>();
  const deletedKeys = new Set<string>();
  const deletedPrefixes: string[] = [];
  for (const op of ops) {
    switch (op?.type) {
      case 'put': {
        checkKey(op.key);
        checkValue(op.value);
        const lease = op.lease ?? 0;
        if (!Number.isSafeInteger(lease) || lease < 0) {
          throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid lease id ${String(op.lease)}`);
        }
        if (puts.has(op.key)) throw duplicate(op.key);
        puts.add(op.key);
        break;
      }
      case 'delete':
        checkKey(op.key);
        deletedKeys.add(op.key);
        break;
      case 'deletePrefix':
        checkPrefix(op.prefix);
        deletedPrefixes.push(op.prefix);
        break;
      case 'get':
        checkKey(op.key);
        break;
      case 'range':
        checkPrefix(op.prefix);
        break;
      default:
        throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid store op: ${JSON.stringify(op)}`);
    }
  }
  for (const key of puts) {
    if (deletedKeys.has(key) || deletedPrefixes.some((p) => key.startsWith(p))) throw duplicate(key);
  }
}

function duplicate(key: string): MeshError {
  return new MeshError('MESH_ERR_INVALID_ARGUMENT', `store txn writes key ${JSON.stringify(key)} more than once`);
}

/** The committed state with this txn's pending writes laid over it. */
class Overlay {
  readonly writes = new Map<string, KeyValue | null>();

  readonly #base: StateView;

  constructor(base: StateView) {
    this.#base = base;
  }

  get(key: string): KeyValue | undefined {
    const pending = this.writes.get(key);
    if (pending !== undefined) return pending ?? undefined;
    return this.#base.get(key);
  }

  set(key: string, kv: KeyValue | null): void {
    this.writes.set(key, kv);
  }

  range(prefix: string): KeyValue[] {
    const kvs = this.#base.range(prefix);
    if (this.writes.size === 0) return kvs;
    const merged = new Map<string, KeyValue>(kvs.map((kv) => [kv.key, kv]));
    for (const [key, kv] of this.writes) {
      if (!key.startsWith(prefix)) continue;
      if (kv) merged.set(key, kv);
      else merged.delete(key);
    }
    return [...merged.values()].sort((a, b) => compareKeys(a.key, b.key));
  }
}
