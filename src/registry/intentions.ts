/** Intentions: allow/deny from a source service to a destination service (or `*`). */
import { MeshError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import type { Intention, IntentionAction } from '../api/schemas.js';
import { decode } from './json-store.js';
import { keys, PREFIX } from './keys.js';

export class Intentions {
  constructor(private readonly store: Store) {}

  async upsert(
    source: string,
    destination: string,
    action: IntentionAction,
    description: string,
  ): Promise<{ intention: Intention; revision: number }> {
    const key = keys.intention(source, destination);
    const cur = await this.store.get(key);
    const now = new Date().toISOString();
    const prev = cur ? decode<Intention>(cur) : undefined;
    const intention: Intention = {
      source,
      destination,
      action,
      description,
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
    };
    const res = await this.store.put(key, JSON.stringify(intention));
    return { intention, revision: res.revision };
  }

  async remove(source: string, destination: string): Promise<{ revision: number }> {
    const res = await this.store.delete(keys.intention(source, destination));
    if (res.deleted === 0)
      throw new MeshError('MESH_ERR_NOT_FOUND', `no intention ${source} -> ${destination}`, {
        hint: 'List intentions with `meshctl intention list`.',
      });
    return { revision: res.revision };
  }

  async list(): Promise<{ revision: number; intentions: Intention[] }> {
    const r = await this.store.range(PREFIX.intentions);
    return { revision: r.revision, intentions: r.kvs.map((kv) => decode<Intention>(kv)) };
  }
}
