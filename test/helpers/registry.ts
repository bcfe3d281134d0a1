/** Starts a real registry (real TLS, real store) in-process for tests, with admin and node clients. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initServer, type InitServerResult } from '../../src/registry/bootstrap.js';
import { startRegistry, type RunningRegistry } from '../../src/registry/main.js';
import { RegistryClient } from '../../src/api/registry-client.js';
import { createKeyAndCsr, nodeId } from '../../src/ca/index.js';
import { silentLogger, type Logger } from '../../src/util/log.js';

export interface TestRegistry {
  dataDir: string;
  init: InitServerResult;
  registry: RunningRegistry;
  url: string;
  caPem: string;
  admin: RegistryClient;
  /** A client with no credentials at all. */
  anonymous(): RegistryClient;
  withToken(token: string): RegistryClient;
  /**
   * Joins a node with a join token of its own (by default one that lets it serve any service;
   * pass `services` to scope it) and returns a client authenticated by its node certificate.
   */
  joinNode(
    name: string,
    address?: string,
    scope?: { services?: string[] },
  ): Promise<{ client: RegistryClient; certPem: string; keyPem: string }>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestRegistry(
  opts: {
    store?: 'memory' | 'sqlite';
    defaultIntention?: 'allow' | 'deny';
    dataDir?: string;
    /** The registry's logger (default: silent). */
    log?: Logger;
  } = {},
): Promise<TestRegistry> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'meshctl-reg-')));
  const init = await initServer({
    dataDir,
    bind: '127.0.0.1:0',
    defaultIntention: opts.defaultIntention ?? 'deny',
    advertise: '127.0.0.1',
  });
  const caPem = await readFile(init.caCertPath, 'utf8');
  const clients: RegistryClient[] = [];
  const track = (c: RegistryClient) => {
    clients.push(c);
    return c;
  };
  let registry = await startRegistry({ dataDir, store: opts.store ?? 'memory', log: opts.log ?? silentLogger() });
  let port = registry.port;
  const url = () => `https://127.0.0.1:${port}`;
  const t: TestRegistry = {
    dataDir,
    init,
    registry,
    url: url(),
    caPem,
    admin: track(new RegistryClient({ baseUrl: url(), ca: caPem, token: init.adminToken })),
    anonymous: () => track(new RegistryClient({ baseUrl: url(), ca: caPem })),
    withToken: (token) => track(new RegistryClient({ baseUrl: url(), ca: caPem, token })),
    async joinNode(name, address = '127.0.0.1', scope = {}) {
      const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(init.trustDomain, name) });
      const made = await t.admin.createToken(`test node ${name}`, undefined, {
        ...(scope.services ? { services: scope.services } : { anyService: true }),
        uses: 1,
      });
      const joiner = t.withToken(made.token);
      const res = await joiner.join({ nodeName: name, address, csr: csrPem });
      const client = track(new RegistryClient({ baseUrl: url(), ca: caPem, cert: res.certificate, key: keyPem }));
      return { client, certPem: res.certificate, keyPem };
    },
    async restart() {
      await registry.close();
      // Same port, so clients made before the restart keep working.
      registry = await startRegistry({
        dataDir,
        store: opts.store ?? 'memory',
        bind: `127.0.0.1:${port}`,
        log: opts.log ?? silentLogger(),
      });
      port = registry.port;
      t.registry = registry;
    },
    async close() {
      for (const c of clients) c.close();
      await registry.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

/** Polls `fn` until it returns a truthy value or the bound runs out (no timing assertions). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
