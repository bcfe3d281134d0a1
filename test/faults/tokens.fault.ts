/**
 * Token guessing: wrong tokens from one source are rate-limited (429 with Retry-After before
 * the token is even looked at) and logged, while another source with the right token is served.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, stopAllDaemons, type CliDaemon } from '../helpers/cli.js';
import { rawRequest } from '../helpers/https.js';
import { HOSTS } from '../helpers/hosts.js';
import { recordAndCheck } from './record.js';

describe('token guessing', () => {
  let root: string;
  let d: CliDaemon;
  let url: string;
  let ca: string;
  let admin: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'meshctl-faults-tokens-'));
    const env = { MESHCTL_CONFIG_DIR: join(root, 'cli') };
    const init = await runCli(
      [
        'init',
        '--server',
        '--data-dir',
        join(root, 'reg'),
        '--bind',
        '0.0.0.0:0',
        '--advertise',
        '127.0.0.1',
        '--json',
        '--no-save',
      ],
      env,
    );
    if (init.exitCode !== 0) throw new Error(init.stderr);
    const made = JSON.parse(init.stdout) as { adminToken: string; caCertPath: string };
    admin = made.adminToken;
    ca = await readFile(made.caCertPath, 'utf8');
    d = startCli(['registry', 'start', '--data-dir', join(root, 'reg'), '--bind', '0.0.0.0:0'], env);
    const m = await d.waitFor(/listening on https:\/\/[^:]+:(\d+)/);
    url = `https://127.0.0.1:${m[1]}`;
  });
  afterAll(async () => {
    await stopAllDaemons();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('rate-limits wrong tokens per source and logs them; other sources are served', async () => {
    const guesser = HOSTS.faults[3];
    const statuses = new Map<number, number>();
    const sent = 100;
    let retryAfter = '';
    for (let i = 0; i < sent; i++) {
      const r = await rawRequest(url, {
        path: '/v1/catalog/services',
        ca,
        token: `msh_guess${i}_${'x'.repeat(40)}`,
        localAddress: guesser,
      });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 429) retryAfter = String(r.headers['retry-after'] ?? '');
    }
    // The right token from the guesser is refused too while it is limited; from another source it works.
    const fromGuesser = await rawRequest(url, {
      path: '/v1/catalog/services',
      ca,
      token: admin,
      localAddress: guesser,
    });
    const fromOther = await rawRequest(url, {
      path: '/v1/catalog/services',
      ca,
      token: admin,
      localAddress: '127.0.0.1',
    });
    const logged = (d.output().match(/wrong token; source rate-limited/g) ?? []).length;
    const limited = statuses.get(429) ?? 0;
    const ok =
      (statuses.get(401) ?? 0) <= 11 &&
      limited >= sent - 11 &&
      Number(retryAfter) > 0 &&
      fromGuesser.status === 429 &&
      fromOther.status === 200 &&
      logged > 0;
    recordAndCheck(
      {
        scenario: 'token guessing',
        load: `${sent} requests with wrong tokens from one source`,
        fault: `answers: ${[...statuses].map(([s, n]) => `${n} × ${s}`).join(', ')}; Retry-After ${retryAfter} s; ${logged} log lines; right token from another source: ${fromOther.status}`,
        sent,
        failed: sent - limited - (statuses.get(401) ?? 0),
        lostWrites: '—',
        expected: '401 for the first burst (10), then 429 with Retry-After, logged; others served',
      },
      ok,
      JSON.stringify({ statuses: [...statuses], fromGuesser: fromGuesser.status, fromOther: fromOther.status, logged }),
    );
  });
});
