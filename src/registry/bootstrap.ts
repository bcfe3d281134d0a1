/**
 * `meshctl init --server`: makes a new mesh in a data dir: the CA root, the registry's own
 * TLS certificate, the admin token and a first join token, and the registry config. The first
 * join token is for one host and one day, and authorizes no services: the admin allows them
 * per node, or makes scoped tokens (`meshctl token create --service api`).
 * Secrets are written 0600 in 0700 directories, each file atomically.
 */
import { hostname, networkInterfaces } from 'node:os';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MeshError } from '../errors/index.js';
import { TRUST_DOMAIN_RE } from '../api/schemas.js';
import { CertificateAuthority, createRoot, serviceId } from '../ca/index.js';
import { primaryAddress } from '../util/net.js';
import { ensurePrivateDir, exists, writeFileAtomic } from '../util/fs.js';
import { newToken } from './tokens.js';
import { REGISTRY_SERVICE } from './catalog.js';
import { parseBind, registryConfigSchema, registryPaths, type RegistryConfig } from './config.js';

export interface InitServerOptions {
  dataDir: string;
  trustDomain?: string;
  defaultIntention?: 'allow' | 'deny';
  bind?: string;
  /** Host name or address agents use to reach the registry (defaults to this host's first address). */
  advertise?: string;
  /** Extra DNS names / IPs for the registry's certificate. */
  san?: string[];
  force?: boolean;
  /** How long a node stays alive without a heartbeat. */
  leaseTtlSeconds?: number;
  /** Lifetime of the service (leaf) certificates the registry signs. */
  leafTtlSeconds?: number;
  /** Lifetime of node certificates (agents renew them at half-life). */
  nodeCertTtlSeconds?: number;
}

/** What every registry init reports, on sqlite or on etcd. */
export interface RegistryInitResult {
  dataDir: string;
  trustDomain: string;
  defaultIntention: 'allow' | 'deny';
  bind: string;
  advertiseUrl: string;
  caFingerprint: string;
  caCertPath: string;
  leaseTtlSeconds: number;
  leafTtlSeconds: number;
  nodeCertTtlSeconds: number;
  files: string[];
}

/** The tokens the host that makes a mesh prints once (on sqlite and on etcd alike). */
export interface FirstTokens {
  adminToken: string;
  joinToken: string;
  /** The first join token: one use, until this time, no services. */
  joinTokenExpiresAt: string;
  joinTokenUses: number;
}

export interface InitServerResult extends RegistryInitResult, FirstTokens {}

export const FIRST_JOIN_TOKEN_TTL_SECONDS = 86_400;

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

export async function initServer(opts: InitServerOptions): Promise<InitServerResult> {
  const trustDomain = opts.trustDomain ?? 'mesh.local';
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid trust domain '${trustDomain}'`, {
      hint: 'Use lowercase letters, digits, "." and "-", e.g. mesh.local.',
    });
  }
  const bind = opts.bind ?? '0.0.0.0:7443';
  const { host: bindHost, port } = parseBind(bind);
  const paths = registryPaths(opts.dataDir);
  if ((await exists(paths.config)) && !opts.force) {
    throw new MeshError('MESH_ERR_ALREADY_INITIALIZED', `a mesh already exists in ${paths.dataDir}`);
  }

  const advertiseHost = opts.advertise ?? (bindHost === '0.0.0.0' || bindHost === '::' ? primaryAddress() : bindHost);
  const { dns, ips } = certificateNames(bindHost, advertiseHost, opts.san ?? []);

  const root = await createRoot({ trustDomain });
  const ca = await CertificateAuthority.load({ certPem: root.certPem, keyPem: root.keyPem, trustDomain });
  const server = await ca.issueServerCertificate({
    spiffeId: serviceId(trustDomain, REGISTRY_SERVICE),
    dnsNames: dns,
    ipAddresses: ips,
    ttlMs: 365 * 86_400_000,
  });
  const admin = newToken('admin', 'admin token made by meshctl init');
  const join_ = newToken('join', 'first join token made by meshctl init', FIRST_JOIN_TOKEN_TTL_SECONDS, new Date(), {
    maxUses: 1,
  });

  const urlHost = advertiseHost.includes(':') ? `[${advertiseHost}]` : advertiseHost;
  const config: RegistryConfig = {
    version: 1,
    trustDomain,
    bind,
    advertiseUrl: `https://${urlHost}:${port}`,
    defaultIntention: opts.defaultIntention ?? 'deny',
    store: 'sqlite',
    leafTtlSeconds: opts.leafTtlSeconds ?? 86_400,
    leaseTtlSeconds: opts.leaseTtlSeconds ?? 15,
    nodeCertTtlSeconds: opts.nodeCertTtlSeconds ?? 86_400,
    caFingerprint: ca.fingerprint,
    bootstrapTokens: [admin.record, join_.record],
    createdAt: new Date().toISOString(),
  };
  // What `registry start` will read back must pass its schema (lifetimes in range, …): refuse now, before anything is written.
  const checked = registryConfigSchema.safeParse(config);
  if (!checked.success) {
    const what = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid registry settings (${what})`, {
      hint: 'The message names each setting and the bound it broke.',
    });
  }

  await ensurePrivateDir(paths.dataDir);
  await ensurePrivateDir(dirname(paths.caKey));
  await ensurePrivateDir(dirname(paths.serverKey));
  if (opts.force) {
    // A new CA invalidates every node and token of the old mesh: start the store afresh too.
    for (const f of [paths.sqlite, `${paths.sqlite}-wal`, `${paths.sqlite}-shm`]) await rm(f, { force: true });
  }
  // The serving chain includes the root, so a joining agent can pin its fingerprint from the handshake.
  const writes: Array<[string, string]> = [
    [paths.caKey, root.keyPem],
    [paths.caCert, root.certPem],
    [paths.serverKey, server.keyPem],
    [paths.serverCert, server.certPem.trimEnd() + '\n' + root.certPem],
    [paths.config, JSON.stringify(config, null, 2) + '\n'],
  ];
  for (const [file, data] of writes) await writeFileAtomic(file, data, 0o600);

  return {
    dataDir: paths.dataDir,
    trustDomain,
    defaultIntention: config.defaultIntention,
    bind,
    advertiseUrl: config.advertiseUrl,
    caFingerprint: ca.fingerprint,
    caCertPath: paths.caCert,
    adminToken: admin.token,
    joinToken: join_.token,
    joinTokenExpiresAt: join_.record.expiresAt!,
    joinTokenUses: 1,
    leaseTtlSeconds: config.leaseTtlSeconds,
    leafTtlSeconds: config.leafTtlSeconds,
    nodeCertTtlSeconds: config.nodeCertTtlSeconds,
    files: writes.map(([f]) => f),
  };
}

export function certificateNames(
  bindHost: string,
  advertiseHost: string,
  extra: string[],
): { dns: string[]; ips: string[] } {
  const dns = new Set<string>(['localhost', hostname()]);
  const ips = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ips.add(a.address.split('%')[0]!);
  for (const h of [bindHost, advertiseHost, ...extra]) {
    if (h === '0.0.0.0' || h === '::') continue;
    if (IPV4_RE.test(h) || h.includes(':')) ips.add(h);
    else if (/^[A-Za-z0-9.-]+$/.test(h)) dns.add(h.toLowerCase());
    else throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid host name or address '${h}'`);
  }
  return { dns: [...dns], ips: [...ips] };
}
