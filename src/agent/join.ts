/**
 * `meshctl init --join`: pin the registry's CA (by fingerprint, or after asking), make this
 * host's node key and CSR here (the key never leaves the host), trade the join token for a
 * node certificate, and write the agent's config. The join token is not kept.
 */
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { MeshError } from '../errors/index.js';
import { NAME_RE } from '../api/names.js';
import { RegistryClient } from '../api/registry-client.js';
import { createKeyAndCsr, nodeId, readSubjectAltNames, parseSpiffeId } from '../ca/index.js';
import { x509 } from '../ca/x509.js';
import { primaryAddress } from '../util/net.js';
import { ensurePrivateDir, exists, writeFileAtomic } from '../util/fs.js';
import { agentPaths, defaultSocketPath, saveAgentConfig, type AgentFileConfig } from './config.js';

export interface JoinOptions {
  registryUrl: string;
  token: string;
  dataDir: string;
  caFingerprint?: string;
  nodeName?: string;
  advertise?: string;
  socketPath?: string;
  servicesDir?: string;
  /**
   * The data directory was chosen (--data-dir): the socket and the services directory default
   * to places inside it, so agents with their own data dirs never share them.
   */
  dataDirGiven?: boolean;
  /** Accept the registry's CA without a pinned fingerprint. */
  yes?: boolean;
  /** Asks the user to confirm an unpinned fingerprint; absent when there is no terminal. */
  confirm?: (fingerprint: string) => Promise<boolean>;
  force?: boolean;
}

export interface JoinResult {
  nodeName: string;
  trustDomain: string;
  advertise: string;
  caFingerprint: string;
  dataDir: string;
  socketPath: string;
  servicesDir: string;
  registry: string;
}

export async function joinMesh(opts: JoinOptions): Promise<JoinResult> {
  const url = parseRegistryUrl(opts.registryUrl);
  const paths = agentPaths(opts.dataDir);
  if ((await exists(paths.config)) && !opts.force) {
    throw new MeshError('MESH_ERR_ALREADY_INITIALIZED', `this host already joined a mesh (${paths.config})`, {
      hint: 'Use --force to join again (e.g. a new mesh), or `meshctl agent leave` first.',
    });
  }
  const nodeName = opts.nodeName ?? defaultNodeName();
  if (!NAME_RE.test(nodeName)) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid node name '${nodeName}'`, {
      hint: 'Pass --node-name with 1-63 lowercase letters, digits, ".", "-" or "_".',
    });
  }
  const advertise = opts.advertise ?? primaryAddress();
  // Checked before contacting anyone: a malformed pin would only fail after the handshake.
  if (opts.caFingerprint !== undefined && !FINGERPRINT_RE.test(opts.caFingerprint.trim())) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `malformed --ca-fingerprint '${opts.caFingerprint}'`, {
      hint: 'A CA fingerprint is the SHA-256 of the CA certificate: 64 hex digits, colons allowed (AB:CD:…), as `meshctl init --server` and `meshctl ca show` print it.',
    });
  }
  const inside = opts.dataDirGiven === true || process.getuid?.() !== 0;
  const socketPath = opts.socketPath ?? (inside ? join(paths.dataDir, 'agent.sock') : defaultSocketPath(paths.dataDir));
  const servicesDir = opts.servicesDir ?? (inside ? join(paths.dataDir, 'services.d') : '/etc/meshctl/services.d');
  if (socketPath.length > MAX_SOCKET_PATH) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `the agent socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} characters (a unix socket's limit)`,
      { hint: 'Pass a shorter --socket PATH, or use a data directory with a shorter path.' },
    );
  }

  const root = await fetchRegistryRoot(url);
  if (opts.caFingerprint !== undefined) {
    if (normalizeFingerprint(opts.caFingerprint) !== normalizeFingerprint(root.fingerprint)) {
      throw new MeshError(
        'MESH_ERR_CA_MISMATCH',
        `the registry's CA fingerprint ${root.fingerprint} does not match the pinned ${opts.caFingerprint}`,
      );
    }
  } else if (!opts.yes) {
    if (!opts.confirm) {
      throw new MeshError(
        'MESH_ERR_CA_MISMATCH',
        `no CA fingerprint to pin the registry to (it presents ${root.fingerprint})`,
        {
          hint: 'Pass --ca-fingerprint (printed by `meshctl init --server` and `meshctl ca show`), or --yes to trust it as shown.',
        },
      );
    }
    if (!(await opts.confirm(root.fingerprint)))
      throw new MeshError('MESH_ERR_CA_MISMATCH', 'the registry CA was not accepted; nothing was changed');
  }

  const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(root.trustDomain, nodeName) });
  // From here on the registry is verified against the pinned root like any TLS peer.
  const client = new RegistryClient({ baseUrl: url.origin, ca: root.pem, token: opts.token });
  let res;
  try {
    res = await client.join({ nodeName, address: advertise, csr: csrPem });
  } finally {
    client.close();
  }

  const config: AgentFileConfig = {
    version: 1,
    nodeName,
    advertise,
    registries: [url.origin],
    trustDomain: res.trustDomain,
    caFingerprint: root.fingerprint,
    socketPath,
    servicesDir,
    leaseTtlSeconds: res.leaseTtlSeconds,
    joinedAt: new Date().toISOString(),
  };
  await ensurePrivateDir(paths.dataDir);
  await ensurePrivateDir(dirname(paths.nodeKey));
  await writeFileAtomic(paths.nodeKey, keyPem, 0o600);
  await writeFileAtomic(paths.nodeCert, res.certificate, 0o600);
  await writeFileAtomic(paths.roots, res.roots.join(''), 0o600);
  await saveAgentConfig(paths, config);
  return {
    nodeName,
    trustDomain: res.trustDomain,
    advertise,
    caFingerprint: root.fingerprint,
    dataDir: paths.dataDir,
    socketPath,
    servicesDir,
    registry: url.origin,
  };
}

/** SHA-256 as hex, with or without colons between the bytes. */
const FINGERPRINT_RE = /^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){31})$/;
/** agent.json's limit (sun_path holds 108 bytes with its NUL; a margin for relative forms). */
const MAX_SOCKET_PATH = 100;

function parseRegistryUrl(s: string): URL {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid registry URL '${s}'`, {
      hint: 'Use https://HOST:PORT, e.g. https://10.0.0.5:7443.',
    });
  }
  if (url.protocol !== 'https:')
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `the registry URL must use https: '${s}'`);
  return url;
}

export function normalizeFingerprint(fp: string): string {
  return fp.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
}

/**
 * The root the registry serves its chain up to, read from the handshake itself (the
 * certificate is not trusted yet: the caller pins it by fingerprint before using it).
 */
async function fetchRegistryRoot(url: URL): Promise<{ pem: string; fingerprint: string; trustDomain: string }> {
  const chain = await new Promise<tls.DetailedPeerCertificate>((resolve, reject) => {
    const sock = tls.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      ...(isIp(url.hostname) ? {} : { servername: url.hostname }),
    });
    const timer = setTimeout(
      () => sock.destroy(new MeshError('MESH_ERR_TIMEOUT', `no TLS answer from ${url.host} within 10s`)),
      10_000,
    );
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = sock.getPeerCertificate(true);
      sock.end();
      resolve(cert);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e instanceof MeshError
          ? e
          : new MeshError('MESH_ERR_UNAVAILABLE', `cannot reach the registry at ${url.host} (${e.code ?? e.message})`),
      );
    });
  });
  let cert: tls.DetailedPeerCertificate = chain;
  for (let i = 0; i < 5 && cert.issuerCertificate && cert.issuerCertificate !== cert; i++)
    cert = cert.issuerCertificate;
  if (!cert.raw) throw new MeshError('MESH_ERR_CA_MISMATCH', `${url.host} did not present a certificate chain`);
  const x = new X509Certificate(cert.raw);
  if (!x.ca || !x.checkIssued(x))
    throw new MeshError('MESH_ERR_CA_MISMATCH', `${url.host} did not present its CA root; is this a meshctl registry?`);
  const sans = readSubjectAltNames(() => new x509.X509Certificate(x.raw).extensions);
  const uri = sans.ok ? sans.sans.uris[0] : undefined;
  const td = uri?.startsWith('spiffe://') ? uri.slice('spiffe://'.length) : undefined;
  if (!td || parseSpiffeId(`spiffe://${td}/node/x`) === undefined)
    throw new MeshError('MESH_ERR_CA_MISMATCH', `${url.host} presented a CA that is not a meshctl mesh CA`);
  return { pem: x.toString(), fingerprint: x.fingerprint256, trustDomain: td };
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function defaultNodeName(): string {
  const h = hostname()
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9_.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return h.length > 0 ? h.slice(0, 63) : 'node';
}
