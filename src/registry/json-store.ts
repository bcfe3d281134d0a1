/** Small JSON helpers over the store: typed reads and compare-and-swap updates with retry. */
import { MeshError } from '../errors/index.js';
import type { KeyValue, Store } from '../store/types.js';

export function decode<T>(kv: KeyValue): T {
  return JSON.parse(kv.value) as T;
}

export async function getJson<T>(store: Store, key: string): Promise<T | undefined> {
  const kv = await store.get(key);
  return kv ? decode<T>(kv) : undefined;
}

/**
 * Read-modify-write one key atomically: `fn` sees the current value (or undefined) and returns
 * the new one, or undefined to leave it unchanged. Retries when another writer got in between.
 */
export async function updateJson<T>(
  store: Store,
  key: string,
  fn: (current: T | undefined) => T | undefined,
  opts: { lease?: number } = {},
): Promise<{ value: T | undefined; revision: number; changed: boolean }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const kv = await store.get(key);
    const current = kv ? decode<T>(kv) : undefined;
    const next = fn(current);
    if (next === undefined) return { value: current, revision: await store.revision(), changed: false };
    const put =
      opts.lease === undefined
        ? { type: 'put' as const, key, value: JSON.stringify(next) }
        : { type: 'put' as const, key, value: JSON.stringify(next), lease: opts.lease };
    const res = await store.txn({
      compare: [{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 }],
      success: [put],
    });
    if (res.succeeded) return { value: next, revision: res.revision, changed: true };
  }
  throw new MeshError('MESH_ERR_CONFLICT', `too much contention updating ${key}`);
}
