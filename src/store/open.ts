/**
 * Opens the store a registry is configured for. The sqlite and etcd backends load only when
 * opened: a registry on sqlite does not carry the etcd client (etcd3, gRPC, protobufjs), nor
 * one on etcd the sqlite module. The registry imports openStore from here, not from index.ts
 * (which re-exports every backend for tests and tools).
 */
import { MeshError } from '../errors/index.js';
import type { EtcdStoreOptions } from './etcd.js';
import { MemoryStore } from './memory.js';
import type { Store } from './types.js';

export type OpenStoreOptions =
  | { readonly kind: 'memory'; readonly historyLimit?: number }
  | { readonly kind: 'sqlite'; readonly path: string; readonly historyLimit?: number }
  | ({ readonly kind: 'etcd' } & EtcdStoreOptions);

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  switch (opts.kind) {
    case 'memory':
      return new MemoryStore(opts.historyLimit === undefined ? {} : { historyLimit: opts.historyLimit });
    case 'sqlite':
      return (await import('./sqlite.js')).SqliteStore.open(opts);
    case 'etcd':
      return (await import('./etcd.js')).EtcdStore.open(opts);
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
