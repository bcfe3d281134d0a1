/** `meshctl registry start`: load the data dir, open the store, serve the API until stopped. */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { MeshError } from '../errors/index.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import { CertificateAuthority } from '../ca/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { loadRegistryConfig, parseBind, type RegistryConfig, type RegistryPaths } from './config.js';
import { readMeshKey, type MeshKey } from './mesh-key.js';
import { openCaKey, openMeshStore, readMesh } from './shared-mesh.js';
import { PeerDirectory } from './peers.js';
import { Catalog } from './catalog.js';
import { Nodes } from './nodes.js';
import { Intentions } from './intentions.js';
import { ConfigEntries } from './config-entries.js';
import { TokenStore } from './token-store.js';
import { ChangeNotifier } from './notifier.js';
import { MetricsHub } from './metrics.js';
import { PeerMetrics, peerKeyOf } from './metrics-peers.js';
import { buildRegistryServer } from './server.js';
import type { RegistryContext } from './context.js';
import { Revocations } from './revocations.js';
import { WrongTokenLimiter, type WrongTokenLimitOptions } from './rate-limit.js';
import { AuditLog } from './audit.js';

export interface StartRegistryOptions {
  dataDir: string;
  store?: 'sqlite' | 'memory' | 'etcd';
  /** Overrides the configured bind address (ADDR:PORT; port 0 picks a free one). */
  bind?: string;
  log?: Logger;
  /** Overrides the wrong-token limit (tests). */
  wrongTokenLimit?: WrongTokenLimitOptions;
}

const LISTEN_BACKLOG = 4096;

export interface RunningRegistry {
  url: string;
  port: number;
  config: RegistryConfig;
  store: Store;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startRegistry(opts: StartRegistryOptions): Promise<RunningRegistry> {
  const { config, paths } = await loadRegistryConfig(opts.dataDir);
  const log = opts.log ?? createLogger('registry');
  const storeKind = opts.store ?? config.store;
  const [serverCert, serverKey] = await Promise.all([paths.serverCert, paths.serverKey].map(readStateFile));
  const { store, caCert, caKey, meshKey } =
    storeKind === 'etcd' ? await openSharedMesh(config, paths) : await openLocalMesh(storeKind, paths);
  let ca: CertificateAuthority;
  try {
    ca = await CertificateAuthority.load({ certPem: caCert, keyPem: caKey, trustDomain: config.trustDomain });
  } catch (e) {
    await store.close();
    throw e;
  }

  const notifier = new ChangeNotifier(store);
  const peers = new PeerDirectory(store, config.advertiseUrl, log);
  const ctx: RegistryContext = {
    config,
    store,
    ca,
    catalog: new Catalog(store),
    nodes: new Nodes(store, () => peers.self.url),
    intentions: new Intentions(store),
    configEntries: new ConfigEntries(store),
    tokens: new TokenStore(store),
    notifier,
    metrics: new MetricsHub(),
    revocations: new Revocations(store, log),
    wrongTokens: new WrongTokenLimiter(opts.wrongTokenLimit),
    audit: new AuditLog(paths.audit, log),
    peers,
    peerMetrics: new PeerMetrics(peers, caCert, meshKey ? peerKeyOf(meshKey) : undefined, log),
    log,
  };
  let app: FastifyInstance | undefined;
  try {
    await ctx.tokens.seed(config.bootstrapTokens);
    await ctx.revocations.start();
    await notifier.start();
    app = buildRegistryServer(ctx, { certPem: serverCert!, keyPem: serverKey!, caPem: caCert, ticketSecret: caKey });
    const { host, port } = parseBind(opts.bind ?? config.bind);
    // Agents reconnect all at once (a registry restart, a failover from another registry): with
    // Node's default backlog of 511 the kernel drops the SYNs beyond it, and those clients wait
    // out TCP's retransmit backoff (1, 3, 7, 15 s …). The kernel caps it at net.core.somaxconn.
    await app.listen({ host, port, backlog: LISTEN_BACKLOG }).catch((e: NodeJS.ErrnoException) => {
      throw new MeshError('MESH_ERR_UNAVAILABLE', `cannot listen on ${host}:${port}: ${e.code ?? e.message}`, {
        hint:
          e.code === 'EADDRINUSE'
            ? 'Another process holds the port: stop it, or start with --bind ADDR:PORT.'
            : 'Check the bind address.',
      });
    });
    const addr = app.server.address();
    const actualPort = typeof addr === 'object' && addr ? addr.port : port;
    const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    await peers.start(opts.bind === undefined ? undefined : `https://${urlHost}:${actualPort}`);
    log.info(
      {
        bind: `${host}:${actualPort}`,
        store: store.kind,
        trustDomain: config.trustDomain,
        revision: notifier.revision,
      },
      'registry listening',
    );
    let closed = false;
    const running: RunningRegistry = {
      url: `https://${urlHost}:${actualPort}`,
      port: actualPort,
      config,
      store,
      app,
      async close() {
        if (closed) return;
        closed = true;
        await peers.stop();
        notifier.stop();
        ctx.revocations.stop();
        ctx.peerMetrics.close();
        await app!.close();
        await ctx.audit.close();
        await store.close();
      },
    };
    return running;
  } catch (e) {
    await peers.stop();
    notifier.stop();
    ctx.revocations.stop();
    ctx.peerMetrics.close();
    await ctx.audit.close();
    await app?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}

function readStateFile(p: string): Promise<string> {
  return readFile(p, 'utf8').catch(() => {
    throw new MeshError('MESH_ERR_NOT_INITIALIZED', `missing ${p}`, {
      hint: 'Run `meshctl init --server` for this data dir, or restore the file from backup.',
    });
  });
}

/** sqlite or memory: the CA lives in the data dir. */
export async function openLocalMesh(
  kind: 'sqlite' | 'memory',
  paths: RegistryPaths,
): Promise<{ store: Store; caCert: string; caKey: string; meshKey?: MeshKey }> {
  const [caCert, caKey] = await Promise.all([paths.caCert, paths.caKey].map(readStateFile));
  const store = await openStore(kind === 'sqlite' ? { kind: 'sqlite', path: paths.sqlite } : { kind: 'memory' });
  return { store, caCert: caCert!, caKey: caKey! };
}

/**
 * etcd: the CA lives in etcd, its key sealed with the mesh key. The key file is checked before
 * etcd is, so a host it was never copied to says so plainly.
 */
export async function openSharedMesh(
  config: RegistryConfig,
  paths: RegistryPaths,
): Promise<{ store: Store; caCert: string; caKey: string; meshKey: MeshKey }> {
  const etcd = config.etcd;
  if (!etcd) throw new MeshError('MESH_ERR_CONFIG', `${paths.config} says store etcd but has no etcd settings`);
  const key = await readMeshKey(
    paths.meshKey,
    () =>
      new MeshError(
        'MESH_ERR_NOT_INITIALIZED',
        `no mesh key at ${paths.meshKey}: this registry cannot open the CA key in etcd`,
        {
          hint: "Copy DATA_DIR/mesh.key from the mesh's first registry host (0600), then start again.",
        },
      ),
  );
  const store = await openMeshStore(etcd);
  try {
    const record = await readMesh(store);
    if (!record) {
      throw new MeshError(
        'MESH_ERR_NOT_INITIALIZED',
        `etcd at ${etcd.endpoints.join(',')} holds no mesh under ${etcd.prefix}`,
        {
          hint: 'Run `meshctl init --server --store etcd --etcd-endpoints ...` on the first registry host, or fix the endpoints.',
        },
      );
    }
    if (record.caFingerprint !== config.caFingerprint) {
      throw new MeshError(
        'MESH_ERR_CONFIG',
        `the mesh in etcd (CA ${record.caFingerprint}) is not the one ${paths.dataDir} was made for (CA ${config.caFingerprint})`,
        {
          hint: 'Point --etcd-endpoints/prefix at this mesh, or run init again for the mesh in etcd.',
        },
      );
    }
    return { store, caCert: record.caCertPem, caKey: openCaKey(record, key, paths.meshKey), meshKey: key };
  } catch (e) {
    await store.close();
    throw e;
  }
}
