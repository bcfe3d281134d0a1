/**
 * Drain (issue 11.5): a sidecar told to stop lets in-flight requests finish, up to its drain
 * time (30 s by default), and takes no new ones meanwhile. Both sidecars of a request are the
 * real `meshctl proxy run` processes with their default drain; both get SIGTERM while a
 * request that takes 15 s is in flight (the old 5 s cap cut it at 7 s with 502 upstream-reset).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { HOSTS, PROXY_PORTS } from '../helpers/hosts.js';
import { defer, get, portOf, snapshot, waitFor, type Reply } from './harness.js';
import { webApiPki } from './web-api.js';

const API_HOST = HOSTS.drain[0];
/** How long the app takes to answer the in-flight request: longer than the old 5 s drain. */
const SLOW_MS = 15_000;

const certs = webApiPki();

function health(socketPath: string): Promise<{ status?: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/health' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(JSON.parse(text) as { status?: string }));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** An app whose /slow answers after SLOW_MS and / at once. */
async function slowApp(): Promise<{ port: number; started: () => number }> {
  let started = 0;
  const server = createServer((req, res) => {
    const reply = () => res.end(`done ${req.url}`);
    if (req.url === '/slow') {
      started += 1;
      setTimeout(reply, SLOW_MS).unref();
    } else reply();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  defer(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { port: portOf(server), started: () => started };
}

/**
 * `meshctl proxy run` from a snapshot, with its default drain (no --drain-seconds). The process
 * comes back wrapped: an async function returning it would wait for it to exit.
 */
async function spawnProxy(dir: string, name: string, snap: unknown): Promise<{ proc: ResultPromise }> {
  const file = join(dir, `${name}.json`);
  const sock = join(dir, `${name}.sock`);
  await writeFile(file, JSON.stringify(snap), { mode: 0o600 });
  const proc = execa(process.execPath, [CLI, 'proxy', 'run', '--admin-socket', sock, '--snapshot', file], {
    env: { MESHCTL_LOG_LEVEL: 'warn' },
    reject: false,
    stdin: 'ignore',
    all: true,
    // execa's own SIGKILL 5 s after a kill() would end the drain under test.
    forceKillAfterDelay: false,
  });
  defer(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await proc;
    }
  });
  await waitFor(async () => (await health(sock))?.status === 'serving', `${name} proxy serving`, 20_000);
  return { proc };
}

/** Whether a TCP connection to host:port is refused (nobody listens any more). */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('drain on SIGTERM', () => {
  it.skipIf(!existsSync(CLI))(
    'a 15 s request in flight through both sidecars completes; no new connection is taken meanwhile (needs `npx tsc -p tsconfig.build.json`)',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'meshctl-drain-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const app = await slowApp();
      const { proc: api } = await spawnProxy(
        dir,
        'api',
        snapshot({
          pki: certs().pki,
          leaf: certs().apiLeaf,
          service: 'api',
          inboundAddress: API_HOST,
          inboundPort: PROXY_PORTS.drainApiInbound,
          appPort: app.port,
          intentions: [{ source: 'web', destination: 'api', action: 'allow' }],
        }),
      );
      const { proc: web } = await spawnProxy(
        dir,
        'web',
        snapshot({
          pki: certs().pki,
          leaf: certs().webLeaf,
          service: 'web',
          appPort: 1,
          upstreams: [
            {
              service: 'api',
              localPort: PROXY_PORTS.drainWebOutbound,
              endpoints: [{ id: 'api-1', address: API_HOST, port: PROXY_PORTS.drainApiInbound }],
              // The request takes as long as the default request timeout (15 s): give it room.
              resilience: { requestTimeoutMs: 30_000 },
            },
          ],
        }),
      );
      expect((await get(PROXY_PORTS.drainWebOutbound, '/quick')).body).toBe('done /quick');

      const inFlight: Promise<Reply> = get(PROXY_PORTS.drainWebOutbound, '/slow');
      await waitFor(() => app.started() === 1, 'the slow request reached the app');
      web.kill('SIGTERM');
      api.kill('SIGTERM');
      // Draining: neither listener takes a new connection.
      await waitFor(
        async () =>
          (await refused('127.0.0.1', PROXY_PORTS.drainWebOutbound)) &&
          (await refused(API_HOST, PROXY_PORTS.drainApiInbound)),
        'both listeners closed',
      );
      expect(web.exitCode).toBeNull();
      expect(api.exitCode).toBeNull();

      const reply = await inFlight;
      expect(reply.status).toBe(200);
      expect(reply.body).toBe('done /slow');
      expect(reply.headers['x-meshctl-reason']).toBeUndefined();
      // With nothing left in flight both exit cleanly, without waiting out the 30 s.
      const [w, a] = await Promise.all([web, api]);
      expect(w.exitCode, String(w.all)).toBe(0);
      expect(a.exitCode, String(a.all)).toBe(0);
    },
    60_000,
  );
});
