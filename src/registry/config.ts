/**
 * The registry's on-disk configuration (`<data-dir>/registry.json`), written by
 * `meshctl init --server` and read by `meshctl registry start`. The file is what the user
 * wrote (or init wrote); `loadRegistryConfig` turns it into validated runtime settings.
 */
import { join, isAbsolute } from 'node:path';
import { z } from 'zod';
import { MeshError } from '../errors/index.js';
import { readConfigFile } from '../util/config-file.js';
import { TRUST_DOMAIN_RE } from '../api/schemas.js';

export const CONFIG_FILE = 'registry.json';

export const DATA_LAYOUT = {
  caCert: 'ca/root.pem',
  caKey: 'ca/root.key',
  serverCert: 'tls/server.pem',
  serverKey: 'tls/server.key',
  sqlite: 'store.db',
  audit: 'audit.log',
  meshKey: 'mesh.key',
} as const;

/** How an etcd-backed registry reaches etcd (`--etcd-*` flags of init). */
export const etcdSettingsSchema = z
  .object({
    endpoints: z.array(z.string().url()).min(1),
    prefix: z.string().min(1).default('/meshctl/'),
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
  })
  .strict();
export type EtcdSettings = z.infer<typeof etcdSettingsSchema>;

const tokenRecordSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['admin', 'join']),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    description: z.string(),
    createdAt: z.string(),
    expiresAt: z.string().optional(),
    revoked: z.boolean(),
    services: z.array(z.string()).optional(),
    anyService: z.boolean().optional(),
    maxUses: z.number().int().min(1).optional(),
    uses: z.number().int().min(0).optional(),
    replaceNode: z.string().optional(),
  })
  .strict();

export const registryConfigSchema = z
  .object({
    version: z.literal(1),
    trustDomain: z.string().regex(TRUST_DOMAIN_RE),
    bind: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[0-9A-Za-z.-]+):\d{1,5}$/, 'bind must be ADDR:PORT'),
    /** URL agents use to join, printed by init. */
    advertiseUrl: z.string().url(),
    defaultIntention: z.enum(['allow', 'deny']),
    store: z.enum(['sqlite', 'memory', 'etcd']).default('sqlite'),
    /** With store etcd: the cluster; the CA key then lives in etcd, sealed with mesh.key. */
    etcd: etcdSettingsSchema.optional(),
    leafTtlSeconds: z.number().int().min(120).max(31_536_000).default(86_400),
    leaseTtlSeconds: z.number().int().min(2).max(3600).default(15),
    /** Node certificates are short-lived like leaves (agents renew them at half-life), so revocation lists stay small. */
    nodeCertTtlSeconds: z.number().int().min(120).max(31_536_000).default(86_400),
    caFingerprint: z.string(),
    /** Tokens made at init, seeded into the store on first start (hashes only). */
    bootstrapTokens: z.array(tokenRecordSchema),
    createdAt: z.string(),
  })
  .strict()
  .refine((c) => c.store !== 'etcd' || c.etcd !== undefined, {
    message: 'store etcd needs the etcd settings (endpoints)',
    path: ['etcd'],
  });

export type RegistryConfig = z.infer<typeof registryConfigSchema>;

export interface RegistryPaths {
  dataDir: string;
  config: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  sqlite: string;
  audit: string;
  meshKey: string;
}

export function registryPaths(dataDir: string): RegistryPaths {
  const abs = isAbsolute(dataDir) ? dataDir : join(process.cwd(), dataDir);
  return {
    dataDir: abs,
    config: join(abs, CONFIG_FILE),
    caCert: join(abs, DATA_LAYOUT.caCert),
    caKey: join(abs, DATA_LAYOUT.caKey),
    serverCert: join(abs, DATA_LAYOUT.serverCert),
    serverKey: join(abs, DATA_LAYOUT.serverKey),
    sqlite: join(abs, DATA_LAYOUT.sqlite),
    audit: join(abs, DATA_LAYOUT.audit),
    meshKey: join(abs, DATA_LAYOUT.meshKey),
  };
}

export function parseBind(bind: string): { host: string; port: number } {
  const i = bind.lastIndexOf(':');
  const host = bind.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(bind.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid bind address '${bind}'`, {
      hint: 'Use ADDR:PORT, e.g. 0.0.0.0:7443 or 127.0.0.1:7443.',
    });
  }
  return { host, port };
}

export async function loadRegistryConfig(dataDir: string): Promise<{ config: RegistryConfig; paths: RegistryPaths }> {
  const paths = registryPaths(dataDir);
  const config = await readConfigFile(
    paths.config,
    registryConfigSchema,
    () => new MeshError('MESH_ERR_NOT_INITIALIZED', `no registry configuration at ${paths.config}`),
  );
  return { config, paths };
}
