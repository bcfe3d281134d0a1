/**
 * Intentions: allow/deny from a source service to a destination service (or `*`). Writes go
 * through ConfigEntries (they are the `service-intentions` config entries, with history);
 * this is the read side the proxies' watch and `intention list` use.
 */
import type { Store } from '../store/types.js';
import type { Intention } from '../api/schemas.js';
import { decode } from './json-store.js';
import { PREFIX } from './keys.js';

export class Intentions {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async list(): Promise<{ revision: number; intentions: Intention[] }> {
    const r = await this.#store.range(PREFIX.intentions);
    return { revision: r.revision, intentions: r.kvs.map((kv) => decode<Intention>(kv)) };
  }
}
