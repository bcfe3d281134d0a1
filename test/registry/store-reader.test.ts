/**
 * What a reader of the store gets (docs/SECURITY.md, threat model): the mesh's records, but no
 * secret it could use — tokens are kept as hashes, and the CA key is not in the store at all.
 * Real processes: `init --server` and `registry start` on sqlite; the store file read directly.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';
import { openStore } from '../../src/store/index.js';
import { parseToken } from '../../src/registry/tokens.js';

let mesh: TestMesh;
let dump: Array<{ key: string; value: string }>;
let secrets: string[];

beforeAll(async () => {
  mesh = await startMesh();
  const scoped = await mesh.adminJson<{ token: string }>(['token', 'create', '--service', 'api']);
  secrets = [mesh.env.MESHCTL_TOKEN!, mesh.joinToken, scoped.token];
  // The registry holds its sqlite file exclusively: read it as a backup would, stopped.
  await mesh.stopRegistry();
  const store = await openStore({ kind: 'sqlite', path: joinPath('registry', 'store.db') });
  try {
    dump = (await store.range('')).kvs.map((kv) => ({ key: kv.key, value: kv.value }));
  } finally {
    await store.close();
  }
  await mesh.startRegistry();
});
afterAll(async () => {
  await mesh?.close();
});

function joinPath(...parts: string[]): string {
  return join(mesh.dir, ...parts);
}

describe('a reader of the store', () => {
  it('finds the token records but no token secret, and no private key', () => {
    expect(dump.some((kv) => kv.key.startsWith('tokens/'))).toBe(true);
    for (const kv of dump) {
      for (const t of secrets) expect(kv.value).not.toContain(parseToken(t)!.secret);
      expect(kv.value).not.toContain('PRIVATE KEY');
    }
  });

  it('cannot use what it found: a token made of the stored hash is refused', async () => {
    const { id, secret } = parseToken(mesh.env.MESHCTL_TOKEN!)!;
    const stored = dump.find((kv) => kv.key === `tokens/${id}`)!.value;
    const hash = (JSON.parse(stored) as { hash: string }).hash;
    // The record holds the secret's digest, not something that stands for it.
    expect(hash).not.toContain(secret);
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'));
    const r = await runCli(['token', 'list'], {
      ...mesh.env,
      MESHCTL_TOKEN: `msh_${id}_${hash}`,
      MESHCTL_REGISTRY: mesh.registryUrl,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/MESH_ERR_UNAUTHENTICATED|invalid token|unauthenticated/i);
  });
});
