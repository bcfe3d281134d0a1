/** `meshctl registry start`: load the data dir, open the store, serve the API until stopped. */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { MeshError } from '../errors/index.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { CertificateAuthority } from '../ca/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { loadRegistryConfig, parseBind, type RegistryConfig } from './config.js';
import { Catalog } from './catalog.js';
import { Nodes } from './nodes.js';
import { Intentions } from './intentions.js';
import { TokenStore } from './token-store.js';
import { ChangeNotifier } from './notifier.js';
import { MetricsHub } from './metrics.js';
import { buildRegistryServer } from './server.js';
import type { RegistryContext } from './context.js';
import { Revocations } from './revocations.js';
import { WrongTokenLimiter, type WrongTokenLimitOptions } from './rate-limit.js';
import { AuditLog } from './audit.js';

export interface StartRegistryOptions {
  dataDir: string;
  store?: 'sqlite' | 'memory';
  /** Overrides the configured bind address (ADDR:PORT; port 0 picks a free one). */
  bind?: string;
  log?: Logger;
  /** Overrides the wrong-token limit (tests). */
  wrongTokenLimit?: WrongTokenLimitOptions;
}

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
  const [caCert, caKey, serverCert, serverKey] = await Promise.all(
    [paths.caCert, paths.caKey, paths.serverCert, paths.serverKey].map((p) =>
      readFile(p, 'utf8').catch(() => {
        throw new MeshError('MESH_ERR_NOT_INITIALIZED', `missing ${p}`, {
          hint: 'Run `meshctl init --server` for this data dir, or restore the file from backup.',
        });
      }),
    ),
  );
  const ca = await CertificateAuthority.load({ certPem: caCert!, keyPem: caKey!, trustDomain: config.trustDomain });
  const storeKind = opts.store ?? config.store;
  const store = await openStore(storeKind === 'sqlite' ? { kind: 'sqlite', path: paths.sqlite } : { kind: 'memory' });

  const notifier = new ChangeNotifier(store);
  const ctx: RegistryContext = {
    config,
    store,
    ca,
    catalog: new Catalog(store),
    nodes: new Nodes(store),
    intentions: new Intentions(store),
    tokens: new TokenStore(store),
    notifier,
    metrics: new MetricsHub(),
    revocations: new Revocations(store, log),
    wrongTokens: new WrongTokenLimiter(opts.wrongTokenLimit),
    audit: new AuditLog(paths.audit, log),
    log,
  };
  let app: FastifyInstance | undefined;
  try {
    await ctx.tokens.seed(config.bootstrapTokens);
    await ctx.revocations.start();
    await notifier.start();
    app = buildRegistryServer(ctx, { certPem: serverCert!, keyPem: serverKey!, caPem: caCert! });
    const { host, port } = parseBind(opts.bind ?? config.bind);
    await app.listen({ host, port }).catch((e: NodeJS.ErrnoException) => {
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
        notifier.stop();
        ctx.revocations.stop();
        await app!.close();
        await ctx.audit.close();
        await store.close();
      },
    };
    return running;
  } catch (e) {
    notifier.stop();
    ctx.revocations.stop();
    await ctx.audit.close();
    await app?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}
