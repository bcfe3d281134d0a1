/**
 * The store: the registry's storage behind one etcd-like interface (see types.ts).
 * `openStore` picks the backend; code above it never needs to know which one it got.
 */
import { MeshError } from '../errors/index.js';
import { EtcdStore, type EtcdStoreOptions } from './etcd.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type * from './types.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { EtcdStore, type EtcdStoreOptions } from './etcd.js';
export { DEFAULT_ETCD_PREFIX } from './etcd-codec.js';
export { DEFAULT_HISTORY_LIMIT } from './revisioned-store.js';

export type OpenStoreOptions =
  | { readonly kind: 'memory'; readonly historyLimit?: number }
  | { readonly kind: 'sqlite'; readonly path: string; readonly historyLimit?: number }
  | ({ readonly kind: 'etcd' } & EtcdStoreOptions);

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  switch (opts.kind) {
    case 'memory':
      return new MemoryStore(opts.historyLimit === undefined ? {} : { historyLimit: opts.historyLimit });
    case 'sqlite':
      return SqliteStore.open(opts);
    case 'etcd':
      return EtcdStore.open(opts);
    default:
      throw new MeshError(
        'MESH_ERR_CONFIG',
        `unknown store backend ${JSON.stringify((opts as { kind?: unknown }).kind)}`,
        {
          hint: 'Use --store sqlite (the default), --store etcd or --store memory.',
        },
      );
  }
}
