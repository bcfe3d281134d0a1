/**
 * Clock skew: an api host whose clock is 2 minutes behind (the backdating of every certificate,
 * src/ca/renewal.ts), then 1 minute behind, then 2 minutes ahead (libfaketime, inherited by its
 * sidecar), joins and serves every request while it is the only healthy api instance; a host
 * 5 minutes behind is refused at join with a message about its clock.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { killProxies, registerArgs, startApp, type TestApp } from '../helpers/mesh.js';
import { runCli, startCli, stopAllDaemons, type CliDaemon } from '../helpers/cli.js';
import { eventually } from '../helpers/registry.js';
import { HOSTS } from '../helpers/hosts.js';
import { startFaultMesh, type FaultMesh } from './mesh.js';
import { describeLoad, failureSummary, underLoad } from './load.js';
import { recordAndCheck, recordFault } from './record.js';

const LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const skewed = (offset: string) => ({
  LD_PRELOAD: LIB,
  FAKETIME: offset,
  // Timers and timeouts keep real time; only the wall clock (and so certificate checks) moves.
  FAKETIME_DONT_FAKE_MONOTONIC: '1',
});

describe.skipIf(!existsSync(LIB))('clock skew', () => {
  let f: FaultMesh;
  let app: TestApp;
  let agent: CliDaemon | undefined;
  const host = HOSTS.faults[3];
  let dataDir = '';

  beforeAll(async () => {
    f = await startFaultMesh(24154);
    app = await startApp('api-3', host);
    dataDir = join(f.mesh.dir, 'agent-skew');
  });
  afterAll(async () => {
    await agent?.kill('SIGKILL');
    if (dataDir) await killProxies(dataDir);
    await app?.stop();
    await stopAllDaemons();
    await f?.close();
  });

  const apiStates = async () =>
    (await f.mesh.adminJson<{ instances: Array<{ node: string; status: string }> }>(['catalog', 'instances', 'api']))
      .instances;

  /** With api-1 and api-2 down, every request must reach api-3 on the skewed host. */
  const onlySkewedServes = async (offset: string) => {
    await eventually(async () => (await apiStates()).some((i) => i.node === 'f-skew' && i.status === 'passing'), {
      what: 'api-3 passing',
      timeoutMs: 30_000,
    });
    for (const a of f.apps) await a.stop();
    try {
      await eventually(
        async () =>
          (await apiStates())
            .filter((i) => i.status === 'passing')
            .map((i) => i.node)
            .join() === 'f-skew',
        { what: 'only api-3 passing', timeoutMs: 30_000 },
      );
      // Give the caller's sidecar the new endpoint list.
      await new Promise((r) => setTimeout(r, 2000));
      const load = { port: f.port, count: 300, perSecond: 50 };
      const r = await underLoad(load, async () => undefined, 0);
      recordAndCheck(
        {
          scenario: `clock skew ${offset}`,
          load: describeLoad(load),
          fault: `api-3's host (agent and sidecar) ${offset.startsWith('-') ? 'behind' : 'ahead'} by ${offset.slice(1)}, the only healthy api`,
          sent: r.sent,
          failed: r.failed.length,
          lostWrites: '—',
          expected: 'joins and serves: 0 failed',
        },
        r.failed.length === 0,
        failureSummary(r),
      );
    } finally {
      for (const a of f.apps) await a.start();
    }
  };

  it('2 minutes behind (the backdating): joins and serves', async () => {
    const env = { ...f.mesh.env, ...skewed('-2m') };
    const j = await f.mesh.joinHost('f-skew', host, ['--data-dir', dataDir], { env: skewed('-2m') });
    if (j.exitCode !== 0) throw new Error(`join at -2m failed: ${j.stderr}`);
    agent = startCli(['agent', 'start', '--data-dir', dataDir], env);
    await agent.waitFor(/agent started/);
    const spec = {
      name: 'api',
      port: app.port,
      address: host,
      protocol: 'http' as const,
      extra: ['--check', `http://${host}:${app.port}/`, '--interval', '500ms'],
    };
    const r = await runCli([...registerArgs(spec), '--data-dir', dataDir], env);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    await onlySkewedServes('-2m');
  });

  /** Restarts the host's agent (and so its sidecar) on another clock. */
  const restartAt = async (offset: string) => {
    await agent?.kill('SIGTERM');
    // Its sidecar outlives the agent, with the old clock: end it so the new one is launched on the new one.
    await killProxies(dataDir);
    agent = startCli(['agent', 'start', '--data-dir', dataDir], { ...f.mesh.env, ...skewed(offset) });
    await agent.waitFor(/agent started/);
  };

  it('1 minute behind: serves', async () => {
    await restartAt('-1m');
    await onlySkewedServes('-1m');
  });

  it('2 minutes ahead: serves', async () => {
    await restartAt('+2m');
    await onlySkewedServes('+2m');
  });

  it('5 minutes behind (beyond the backdating): refused at join, with a message about the clock', async () => {
    const j = await f.mesh.joinHost('f-skew-5', host, ['--data-dir', join(f.mesh.dir, 'agent-skew-5')], {
      env: skewed('-5m'),
    });
    const clear = /not valid yet by this host's clock/.test(j.stderr) && /clock/.test(j.stderr);
    const row = {
      scenario: 'clock skew -5m (beyond the backdating)',
      load: '1 join',
      fault: "a host's clock 5 min behind joins",
      sent: 1,
      failed: j.exitCode === 0 ? 0 : 1,
      lostWrites: '—' as const,
      expected: "refused with a message about this host's clock",
    };
    if (j.exitCode === 0) {
      recordFault({ ...row, result: 'FAIL (joined)' });
      throw new Error('joined at -5m');
    }
    recordAndCheck(row, clear, j.stderr.split('\n')[0] ?? '');
  });
});
