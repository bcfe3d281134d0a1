/**
 * The real proxy process (`meshctl proxy run`, compiled) started from a snapshot file with
 * no agent and no registry anywhere: it must serve mesh traffic on its own ("fail static"),
 * survive a kill -9 + restart from the same file, and drain and exit on SIGTERM (writing out
 * its access log on stdout first).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { defer, get, outboundPort, snapshot, startHttpApp, startProxy, waitFor } from './harness.js';
import { webApiPki } from './web-api.js';

const certs = webApiPki();

function health(socketPath: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/health' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end();
  });
}

function spawnProxy(sock: string, file: string): ResultPromise {
  const proc = execa(
    process.execPath,
    [CLI, 'proxy', 'run', '--admin-socket', sock, '--snapshot', file, '--drain-seconds', '1'],
    {
      env: { MESHCTL_LOG_LEVEL: 'warn' },
      reject: false,
      stdin: 'ignore',
      all: true,
    },
  );
  defer(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await proc;
    }
  });
  return proc;
}

async function serving(sock: string, pid: number): Promise<any> {
  let h: any;
  await waitFor(
    async () => {
      h = await health(sock).catch(() => undefined);
      return h?.pid === pid && h.status === 'serving';
    },
    `proxy ${pid} serving on ${sock}`,
    20_000,
  );
  return h;
}

describe('the proxy process', () => {
  it.skipIf(!existsSync(CLI))(
    'serves from its snapshot file with no agent, restarts after kill -9, and drains on SIGTERM (needs `npx tsc -p tsconfig.build.json`)',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'meshctl-proxy-proc-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const app = await startHttpApp('api-1');
      const sock = join(dir, 'api.sock');
      const file = join(dir, 'api.snapshot.json');
      await writeFile(
        file,
        JSON.stringify(
          snapshot({
            version: 5,
            pki: certs().pki,
            leaf: certs().apiLeaf,
            service: 'api',
            id: 'api-1',
            inboundAddress: '127.0.0.2',
            appPort: app.port,
            intentions: [{ source: 'web', destination: 'api', action: 'allow' }],
          }),
        ),
        { mode: 0o600 },
      );

      const first = spawnProxy(sock, file);
      const h1 = await serving(sock, first.pid!);
      expect(h1).toMatchObject({ version: 5, service: 'api', serviceId: 'api-1', inbound: { address: '127.0.0.2' } });

      // A web sidecar (in this process) reaches it over mTLS.
      const upstreams = [
        { service: 'api', endpoints: [{ id: 'api-1', address: '127.0.0.2', port: h1.inbound.port as number }] },
      ];
      const web = await startProxy(
        snapshot({ pki: certs().pki, leaf: certs().webLeaf, service: 'web', appPort: 1, upstreams }),
      );
      const r1 = await get(outboundPort(web, 'api'), '/one');
      expect(r1.status).toBe(200);
      expect(JSON.parse(r1.body).app).toBe('api-1');

      // kill -9: the socket file stays behind; a new process takes it over and serves the same file.
      first.kill('SIGKILL');
      await first;
      // The same port is asked for explicitly now, as the agent's cache would hold it.
      // This time with access logs on and no path: lines go to stdout.
      await writeFile(
        file,
        JSON.stringify(
          snapshot({
            version: 5,
            pki: certs().pki,
            leaf: certs().apiLeaf,
            service: 'api',
            id: 'api-1',
            inboundAddress: '127.0.0.2',
            inboundPort: h1.inbound.port,
            appPort: app.port,
            intentions: [{ source: 'web', destination: 'api', action: 'allow' }],
            accessLog: { enabled: true },
          }),
        ),
      );
      const second = spawnProxy(sock, file);
      const h2 = await serving(sock, second.pid!);
      expect(h2.inbound.port).toBe(h1.inbound.port);
      const r2 = await get(outboundPort(web, 'api'), '/two');
      expect(r2.status).toBe(200);
      expect(app.seen.map((s) => s.url)).toEqual(['/one', '/two']);

      second.kill('SIGTERM');
      const done = await second;
      expect(done.exitCode).toBe(0);
      expect(String(done.all)).toContain('meshctl proxy running (admin socket');
      // The access log line was written out before the process exited.
      const lines = String(done.stdout)
        .split('\n')
        .filter((l) => l.includes('"direction"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        direction: 'inbound',
        source: 'web',
        destination: 'api',
        method: 'GET',
        path: '/two',
        status: 200,
      });
      expect(app.seen[1]!.headers.traceparent).toBe(lines[0]!.traceparent);
      await expect(stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
    },
  );

  it.skipIf(!existsSync(CLI))('rejects a missing --admin-socket with a usage error', async () => {
    const r = await execa(process.execPath, [CLI, 'proxy', 'run'], { reject: false, stdin: 'ignore' });
    expect(r.exitCode).toBe(64);
    expect(String(r.stderr)).toContain("required option '--admin-socket <path>' not specified");
  });
});
