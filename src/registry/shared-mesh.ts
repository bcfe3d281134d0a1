/**
 * The mesh as several registries share it through the store (etcd): one record, `mesh/ca`,
 * written once by the first registry's init (create-if-absent, so two hosts racing make one
 * mesh), holding the settings every registry must agree on, the CA certificate, and the CA key
 * sealed with the mesh key.
 */
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import type { EtcdSettings } from './config.js';
import { sealedSchema, seal, unseal, type MeshKey } from './mesh-key.js';

export const MESH_RECORD_KEY = 'mesh/ca';

const meshRecordSchema = z
  .object({
    version: z.literal(1),
    trustDomain: z.string(),
    defaultIntention: z.enum(['allow', 'deny']),
    leafTtlSeconds: z.number().int(),
    leaseTtlSeconds: z.number().int(),
    nodeCertTtlSeconds: z.number().int(),
    caFingerprint: z.string(),
    caCertPem: z.string(),
    caKey: sealedSchema,
    createdAt: z.string(),
  })
  .strict();

export type MeshRecord = z.infer<typeof meshRecordSchema>;
export type MeshSettings = Omit<MeshRecord, 'version' | 'caKey'>;

/** The etcd store as registry.json describes it. */
export function openMeshStore(etcd: EtcdSettings): Promise<Store> {
  const tls = etcd.caFile
    ? {
        caFile: etcd.caFile,
        ...(etcd.certFile ? { certFile: etcd.certFile } : {}),
        ...(etcd.keyFile ? { keyFile: etcd.keyFile } : {}),
      }
    : undefined;
  return openStore({ kind: 'etcd', endpoints: etcd.endpoints, prefix: etcd.prefix, ...(tls ? { tls } : {}) });
}

const keyContext = (fingerprint: string): string => `meshctl ca key ${fingerprint}`;

/** Writes the mesh unless one exists; returns false (writing nothing) if another host was first. */
export async function publishMesh(
  store: Store,
  settings: MeshSettings,
  caKeyPem: string,
  key: MeshKey,
): Promise<boolean> {
  const record: MeshRecord = {
    version: 1,
    ...settings,
    caKey: seal(key, caKeyPem, keyContext(settings.caFingerprint)),
  };
  const res = await store.txn({
    compare: [{ key: MESH_RECORD_KEY, target: 'exists', value: false }],
    success: [{ type: 'put', key: MESH_RECORD_KEY, value: JSON.stringify(record) }],
  });
  return res.succeeded;
}

export async function readMesh(store: Store): Promise<MeshRecord | undefined> {
  const kv = await store.get(MESH_RECORD_KEY);
  if (!kv) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch {
    parsed = undefined;
  }
  const r = meshRecordSchema.safeParse(parsed);
  if (!r.success) {
    throw new MeshError('MESH_ERR_CONFIG', `the mesh record ${MESH_RECORD_KEY} in the store is not one meshctl wrote`, {
      hint: 'Restore it from an etcd snapshot (docs/HA.md), or point the registry at the right etcd prefix.',
    });
  }
  return r.data;
}

/** The CA key in the clear, or a MeshError saying the key file is the wrong one. */
export function openCaKey(record: MeshRecord, key: MeshKey, keyFile: string): string {
  const pem = unseal(key, record.caKey, keyContext(record.caFingerprint));
  if (pem === undefined) {
    throw new MeshError(
      'MESH_ERR_CONFIG',
      `the mesh key ${keyFile} does not open the CA key of mesh ${record.trustDomain} in etcd`,
      {
        hint: "This is another mesh's key: copy DATA_DIR/mesh.key from this mesh's first registry host.",
      },
    );
  }
  return pem;
}
