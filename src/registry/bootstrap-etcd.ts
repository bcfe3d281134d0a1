/**
 * `meshctl init --server --store etcd`: the first registry host makes the mesh and publishes
 * it to etcd (CA key sealed with a new mesh key, written to DATA_DIR/mesh.key); every other
 * registry host (`--mesh-key FILE`) finds that mesh in etcd and makes only its own TLS
 * certificate, signed by the mesh's CA, for its own names. No host copies the CA by hand.
 */
import { copyFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { MeshError } from '../errors/index.js';
import { TRUST_DOMAIN_RE } from '../api/schemas.js';
import { CertificateAuthority, createRoot, serviceId } from '../ca/index.js';
import type { Store } from '../store/types.js';
import { primaryAddress } from '../util/net.js';
import { ensurePrivateDir, exists, writeFileAtomic } from '../util/fs.js';
import {
  certificateNames,
  FIRST_JOIN_TOKEN_TTL_SECONDS,
  type InitServerOptions,
  type FirstTokens,
  type RegistryInitResult,
} from './bootstrap.js';
import { REGISTRY_SERVICE } from './catalog.js';
import { parseBind, registryConfigSchema, registryPaths, type EtcdSettings, type RegistryConfig } from './config.js';
import { newMeshKey, readMeshKey, writeMeshKey, type MeshKey } from './mesh-key.js';
import { openCaKey, openMeshStore, publishMesh, readMesh, type MeshSettings } from './shared-mesh.js';
import { TokenStore } from './token-store.js';
import { newToken } from './tokens.js';

export interface InitEtcdServerOptions extends InitServerOptions {
  readonly etcd: { endpoints: string[]; prefix?: string; caFile?: string; certFile?: string; keyFile?: string };
  /** Another registry host's mesh key: join the mesh found in etcd instead of making one. */
  readonly meshKeyFile?: string;
}

/** The tokens are made only by the first host (the others use the same ones): absent on a join. */
export interface InitEtcdServerResult extends RegistryInitResult, Partial<FirstTokens> {
  /** false: this host made the mesh; true: it joined the mesh already in etcd. */
  joined: boolean;
  meshKeyPath: string;
  etcdEndpoints: string[];
  /** What to run on the other registry hosts (after copying mesh.key there). */
  otherRegistryCommand: string;
}

export async function initEtcdServer(opts: InitEtcdServerOptions): Promise<InitEtcdServerResult> {
  if (opts.force) {
    throw new MeshError('MESH_ERR_USAGE', '--force cannot replace a mesh kept in etcd', {
      hint: 'Remove the old mesh from etcd first (`etcdctl del --prefix /meshctl/`), or use another --data-dir.',
    });
  }
  const bind = opts.bind ?? '0.0.0.0:7443';
  const { host: bindHost, port } = parseBind(bind);
  const paths = registryPaths(opts.dataDir);
  if (await exists(paths.config)) {
    throw new MeshError('MESH_ERR_ALREADY_INITIALIZED', `a registry is already set up in ${paths.dataDir}`);
  }
  const etcd: EtcdSettings = {
    endpoints: opts.etcd.endpoints,
    prefix: opts.etcd.prefix ?? '/meshctl/',
    ...(opts.etcd.caFile ? { caFile: resolve(opts.etcd.caFile) } : {}),
    ...(opts.etcd.certFile ? { certFile: resolve(opts.etcd.certFile) } : {}),
    ...(opts.etcd.keyFile ? { keyFile: resolve(opts.etcd.keyFile) } : {}),
  };
  const advertiseHost = opts.advertise ?? (bindHost === '0.0.0.0' || bindHost === '::' ? primaryAddress() : bindHost);
  const { dns, ips } = certificateNames(bindHost, advertiseHost, opts.san ?? []);
  const urlHost = advertiseHost.includes(':') ? `[${advertiseHost}]` : advertiseHost;
  const advertiseUrl = `https://${urlHost}:${port}`;

  const store = await openMeshStore(etcd);
  try {
    const made = opts.meshKeyFile === undefined ? await makeMesh(store, opts) : await findMesh(store, opts.meshKeyFile);
    const { settings, ca, key } = made;
    const server = await ca.issueServerCertificate({
      spiffeId: serviceId(settings.trustDomain, REGISTRY_SERVICE),
      dnsNames: dns,
      ipAddresses: ips,
      ttlMs: 365 * 86_400_000,
    });
    const config: RegistryConfig = {
      version: 1,
      trustDomain: settings.trustDomain,
      bind,
      advertiseUrl,
      defaultIntention: settings.defaultIntention,
      store: 'etcd',
      etcd,
      leafTtlSeconds: settings.leafTtlSeconds,
      leaseTtlSeconds: settings.leaseTtlSeconds,
      nodeCertTtlSeconds: settings.nodeCertTtlSeconds,
      caFingerprint: settings.caFingerprint,
      // Already in etcd; kept so `registry start` seeds them again if etcd was restored without them.
      bootstrapTokens: made.tokens.map((t) => t.record),
      createdAt: new Date().toISOString(),
    };
    const checked = registryConfigSchema.safeParse(config);
    if (!checked.success) {
      const what = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid registry settings (${what})`);
    }
    await ensurePrivateDir(paths.dataDir);
    await ensurePrivateDir(dirname(paths.caCert));
    await ensurePrivateDir(dirname(paths.serverKey));
    if (opts.meshKeyFile === undefined) await writeMeshKey(paths.meshKey, key);
    else if (resolve(opts.meshKeyFile) !== paths.meshKey) await copyFile(opts.meshKeyFile, paths.meshKey);
    // No CA key on this disk: it stays in etcd, sealed.
    const writes: Array<[string, string]> = [
      [paths.caCert, settings.caCertPem],
      [paths.serverKey, server.keyPem],
      [paths.serverCert, server.certPem.trimEnd() + '\n' + settings.caCertPem],
      [paths.config, JSON.stringify(config, null, 2) + '\n'],
    ];
    for (const [file, data] of writes) await writeFileAtomic(file, data, 0o600);

    const flags = [
      `--etcd-endpoints ${etcd.endpoints.join(',')}`,
      ...(etcd.prefix !== '/meshctl/' ? [`--etcd-prefix ${etcd.prefix}`] : []),
      ...(etcd.caFile ? [`--etcd-ca ${etcd.caFile}`] : []),
      ...(etcd.certFile ? [`--etcd-cert ${etcd.certFile} --etcd-key ${etcd.keyFile ?? ''}`] : []),
    ];
    const [admin, join] = made.tokens;
    return {
      joined: opts.meshKeyFile !== undefined,
      dataDir: paths.dataDir,
      trustDomain: settings.trustDomain,
      defaultIntention: settings.defaultIntention,
      bind,
      advertiseUrl,
      caFingerprint: settings.caFingerprint,
      caCertPath: paths.caCert,
      meshKeyPath: paths.meshKey,
      etcdEndpoints: etcd.endpoints,
      ...(admin && join
        ? {
            adminToken: admin.token,
            joinToken: join.token,
            joinTokenExpiresAt: join.record.expiresAt!,
            joinTokenUses: join.record.maxUses!,
          }
        : {}),
      leaseTtlSeconds: settings.leaseTtlSeconds,
      leafTtlSeconds: settings.leafTtlSeconds,
      nodeCertTtlSeconds: settings.nodeCertTtlSeconds,
      otherRegistryCommand: `meshctl init --server --store etcd ${flags.join(' ')} --mesh-key ${paths.meshKey}`,
      files: [paths.meshKey, ...writes.map(([f]) => f)],
    };
  } finally {
    await store.close();
  }
}

interface Made {
  settings: MeshSettings;
  ca: CertificateAuthority;
  key: MeshKey;
  tokens: Array<ReturnType<typeof newToken>>;
}

async function makeMesh(store: Store, opts: InitEtcdServerOptions): Promise<Made> {
  const existing = await readMesh(store);
  if (existing) {
    throw new MeshError(
      'MESH_ERR_ALREADY_INITIALIZED',
      `etcd already holds mesh ${existing.trustDomain} (CA ${existing.caFingerprint})`,
      {
        hint: "To add this host as another registry of that mesh, copy the first host's DATA_DIR/mesh.key here and pass --mesh-key FILE.",
      },
    );
  }
  const trustDomain = opts.trustDomain ?? 'mesh.local';
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid trust domain '${trustDomain}'`, {
      hint: 'Use lowercase letters, digits, "." and "-", e.g. mesh.local.',
    });
  }
  const root = await createRoot({ trustDomain });
  const ca = await CertificateAuthority.load({ certPem: root.certPem, keyPem: root.keyPem, trustDomain });
  const key = newMeshKey();
  const settings: MeshSettings = {
    trustDomain,
    defaultIntention: opts.defaultIntention ?? 'deny',
    leafTtlSeconds: opts.leafTtlSeconds ?? 86_400,
    leaseTtlSeconds: opts.leaseTtlSeconds ?? 15,
    nodeCertTtlSeconds: opts.nodeCertTtlSeconds ?? 86_400,
    caFingerprint: ca.fingerprint,
    caCertPem: root.certPem,
    createdAt: new Date().toISOString(),
  };
  const tokens = [
    newToken('admin', 'admin token made by meshctl init'),
    // As on sqlite: the first join token is good for one join, within a day.
    newToken('join', 'first join token made by meshctl init', FIRST_JOIN_TOKEN_TTL_SECONDS, new Date(), {
      maxUses: 1,
    }),
  ];
  if (!(await publishMesh(store, settings, root.keyPem, key))) {
    throw new MeshError('MESH_ERR_ALREADY_INITIALIZED', 'another host made a mesh in this etcd just now', {
      hint: "Copy that host's DATA_DIR/mesh.key here and run init again with --mesh-key FILE.",
    });
  }
  await new TokenStore(store).seed(tokens.map((t) => t.record));
  return { settings, ca, key, tokens };
}

async function findMesh(store: Store, meshKeyFile: string): Promise<Made> {
  const key = await readMeshKey(
    meshKeyFile,
    () =>
      new MeshError('MESH_ERR_INVALID_ARGUMENT', `no mesh key at ${meshKeyFile}`, {
        hint: "Copy DATA_DIR/mesh.key from the mesh's first registry host and pass its path.",
      }),
  );
  const record = await readMesh(store);
  if (!record) {
    throw new MeshError('MESH_ERR_NOT_INITIALIZED', 'etcd holds no mesh to join', {
      hint: 'Run init without --mesh-key on the first registry host, or check --etcd-endpoints/--etcd-prefix.',
    });
  }
  const keyPem = openCaKey(record, key, meshKeyFile);
  const ca = await CertificateAuthority.load({ certPem: record.caCertPem, keyPem, trustDomain: record.trustDomain });
  const { version: _v, caKey: _k, ...settings } = record;
  return { settings, ca, key, tokens: [] };
}
