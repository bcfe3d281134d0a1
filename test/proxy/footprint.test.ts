/**
 * A proxy loads only what it runs: the real `meshctl proxy run` process, serving a snapshot,
 * must not load the CA's certificate library (@peculiar/x509, asn1js and their set-up), zod,
 * yaml (the CLI's config commands load it when they run), undici's index, re2js (loaded by the
 * first regex a snapshot compiles) nor http-proxy (by the first request the inbound parses)
 * (docs/BENCHMARKS.md "RSS"). Peer identities come from Node's own parsed certificate (src/ca/peer.ts), snapshots
 * are checked with valibot. Every module the process loads is recorded by a module hook.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { HOSTS } from '../helpers/hosts.js';
import { defer, snapshot, startHttpApp, waitFor } from './harness.js';
import type { Leaf, Pki } from './pki.js';
import { webApiPki } from './web-api.js';

const HOOK = fileURLToPath(new URL('./fixtures/record-loads.mjs', import.meta.url));
const HOST = HOSTS.footprint[0];

const certs = webApiPki();
let pki: Pki;
let apiLeaf: Leaf;

beforeAll(() => {
  ({ pki, apiLeaf } = certs());
});

function status(socketPath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/health' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve((JSON.parse(text) as { status?: string }).status));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

describe('the proxy process footprint', () => {
  it.skipIf(!existsSync(CLI))(
    "serves without loading @peculiar/x509, asn1js, reflect-metadata, zod, yaml, undici's index, re2js or http-proxy (needs `npx tsc -p tsconfig.build.json`)",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'meshctl-footprint-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const app = await startHttpApp('api-1');
      const sock = join(dir, 'api.sock');
      const file = join(dir, 'api.snapshot.json');
      const loads = join(dir, 'loads.txt');
      await writeFile(
        file,
        JSON.stringify(
          snapshot({ version: 1, pki, leaf: apiLeaf, service: 'api', inboundAddress: HOST, appPort: app.port }),
        ),
        { mode: 0o600 },
      );
      const proc = execa(
        process.execPath,
        ['--import', HOOK, CLI, 'proxy', 'run', '--admin-socket', sock, '--snapshot', file, '--drain-seconds', '0'],
        { env: { MESHCTL_LOG_LEVEL: 'warn', MESHCTL_TEST_LOADS: loads }, reject: false, stdin: 'ignore', all: true },
      );
      defer(async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGKILL');
          await proc;
        }
      });
      await waitFor(async () => (await status(sock)) === 'serving', 'the proxy serving its snapshot', 20_000);
      proc.kill('SIGTERM');
      const done = await proc;
      expect(done.exitCode, done.all).toBe(0);

      const urls = (await readFile(loads, 'utf8')).split('\n').filter((l) => l !== '');
      // The record is real: the proxy's own modules are in it.
      expect(urls.some((u) => u.endsWith('/dist/proxy/proxy.js'))).toBe(true);
      expect(urls.some((u) => u.endsWith('/dist/ca/peer.js'))).toBe(true);
      const heavy = urls.filter((u) =>
        /\/node_modules\/(@peculiar|asn1js|reflect-metadata|tsyringe|zod|yaml|re2js|http-proxy|follow-redirects)\//.test(
          u,
        ),
      );
      // undici's index (fetch, WebSocket, mocks…): the client loads its Pool module alone.
      expect(urls.filter((u) => /\/node_modules\/undici\/index\.js$/.test(u))).toEqual([]);
      expect(heavy).toEqual([]);
      expect(urls.filter((u) => /\/dist\/ca\/(x509|authority|root|keys|san)\.js$/.test(u))).toEqual([]);
    },
  );
});
