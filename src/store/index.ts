/**
 * The store: the registry's storage behind one etcd-like interface (see types.ts).
 * `openStore` picks the backend; code above it never needs to know which one it got.
 * This module re-exports every backend; code that should load only the backend it opens
 * (the registry) imports openStore from ./open.js.
 */
export type * from './types.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { EtcdStore, type EtcdStoreOptions } from './etcd.js';
export { DEFAULT_ETCD_PREFIX } from './etcd-codec.js';
export { DEFAULT_HISTORY_LIMIT } from './revisioned-store.js';
export { openStore, type OpenStoreOptions } from './open.js';
