/**
 * The mesh key: 32 random bytes made by the first registry of an etcd-backed mesh and copied
 * by hand to every other registry host (`DATA_DIR/mesh.key`). Secrets the registries share
 * through etcd (the CA key above all) are sealed with it (AES-256-GCM), so someone with only
 * etcd access can read the mesh's public state but cannot mint certificates.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { writeFileAtomic } from '../util/fs.js';

const KEY_BYTES = 32;
const HEADER = 'meshctl-mesh-key-v1';

export type MeshKey = Buffer & { readonly __meshKey: true };

export function newMeshKey(): MeshKey {
  return randomBytes(KEY_BYTES) as MeshKey;
}

/** The file holds one line: the header and the key in base64url. */
export async function writeMeshKey(file: string, key: MeshKey): Promise<void> {
  await writeFileAtomic(file, `${HEADER} ${key.toString('base64url')}\n`, 0o600);
}

export async function readMeshKey(file: string, missing: () => MeshError): Promise<MeshKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw new MeshError('MESH_ERR_CONFIG', `cannot read the mesh key ${file}: ${(e as Error).message}`);
  }
  const m = /^meshctl-mesh-key-v1 ([A-Za-z0-9_-]{43})\s*$/.exec(text);
  const key = m ? Buffer.from(m[1] as string, 'base64url') : undefined;
  if (!key || key.length !== KEY_BYTES) {
    throw new MeshError('MESH_ERR_CONFIG', `${file} is not a meshctl mesh key`, {
      hint: "Copy DATA_DIR/mesh.key from the mesh's first registry host unchanged.",
    });
  }
  return key as MeshKey;
}

export const sealedSchema = z
  .object({ alg: z.literal('aes-256-gcm'), iv: z.string(), tag: z.string(), data: z.string() })
  .strict();
export type Sealed = z.infer<typeof sealedSchema>;

/** Encrypts and authenticates `plain`; `context` is bound in (a sealed value cannot be moved to another use). */
export function seal(key: MeshKey, plain: string, context: string): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(context, 'utf8'));
  const data = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return {
    alg: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

/** Decrypts, or undefined when the key (or the context) is not the one it was sealed with. */
export function unseal(key: MeshKey, sealed: Sealed, context: string): string | undefined {
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    d.setAAD(Buffer.from(context, 'utf8'));
    d.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(sealed.data, 'base64')), d.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
