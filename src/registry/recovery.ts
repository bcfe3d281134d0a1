/**
 * `meshctl registry admin-token`: the way back when no admin token is left (lost, leaked and
 * revoked). It works from the registry host's own files, not the API: reading the data
 * directory (CA key, or the mesh key for etcd) is what proves the right to be admin, as root
 * or the registry's user. The new token goes in the store like any other, and the audit log
 * says a recovery made it.
 */
import { userInfo } from 'node:os';
import { MeshError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import { createLogger } from '../util/log.js';
import { AuditLog } from './audit.js';
import { loadRegistryConfig } from './config.js';
import { openLocalMesh, openSharedMesh } from './main.js';
import { TokenStore } from './token-store.js';
import type { TokenInfo } from '../api/schemas.js';

export interface RecoveredToken {
  token: string;
  info: TokenInfo;
  store: string;
}

export async function recoverAdminToken(opts: { dataDir: string; description?: string }): Promise<RecoveredToken> {
  const { config, paths } = await loadRegistryConfig(opts.dataDir);
  let store: Store;
  try {
    ({ store } =
      config.store === 'etcd' ? await openSharedMesh(config, paths) : await openLocalMesh(config.store, paths));
  } catch (e) {
    // sqlite: the running registry holds the file exclusively.
    if (e instanceof MeshError && e.code === 'MESH_ERR_STORE' && /in use by another process/.test(e.message)) {
      throw new MeshError('MESH_ERR_STORE', `the registry is running on ${paths.dataDir} and holds its store`, {
        cause: e,
        hint: 'Stop it (`systemctl stop meshctl-registry`), run this again, then start it; sidecars keep serving meanwhile.',
      });
    }
    throw e;
  }
  const user = safeUser();
  try {
    const made = await new TokenStore(store).create(
      'admin',
      opts.description ?? `recovery by ${user} on the registry host`,
    );
    // Its own complaints go to stderr: stdout is the token (or --json).
    const audit = new AuditLog(paths.audit, createLogger('registry', { destination: 2 }));
    audit.record({
      tokenId: 'recovery',
      kind: 'recovery',
      action: 'registry admin-token',
      detail: { created: made.info.id, user, pid: process.pid },
    });
    await audit.close();
    return { token: made.token, info: made.info, store: config.store };
  } finally {
    await store.close();
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
