/**
 * kill -9 under load (fail static): a sidecar of one api instance, the agent of a host, the
 * registry. Callers fail over or keep serving what they have: no request may fail.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { killProxies } from '../helpers/mesh.js';
import { stopAllDaemons } from '../helpers/cli.js';
import { startFaultMesh, type FaultMesh } from './mesh.js';
import { describeLoad, failureSummary, underLoad, type LoadOptions } from './load.js';
import { recordAndCheck } from './record.js';

describe('kill -9 under load', () => {
  let f: FaultMesh;
  let load: LoadOptions;
  beforeAll(async () => {
    f = await startFaultMesh(24150);
    load = { port: f.port, count: 600, perSecond: 100 };
  });
  afterAll(async () => {
    await stopAllDaemons();
    await f?.close();
  });

  const run = async (scenario: string, fault: string, act: () => Promise<void>) => {
    const r = await underLoad(load, act);
    recordAndCheck(
      {
        scenario,
        load: describeLoad(load),
        fault,
        sent: r.sent,
        failed: r.failed.length,
        lostWrites: '—',
        expected: '0 failed (failover / fail static)',
      },
      r.failed.length === 0 && r.sent === load.count,
      failureSummary(r),
    );
  };

  it('of a sidecar of one api instance: callers fail over to the other; the agent relaunches it', async () => {
    await run('kill -9 sidecar', "SIGKILL api-1's sidecar (relaunched by its agent)", async () => {
      if ((await killProxies(f.api[0].dataDir)) !== 1) throw new Error('no sidecar to kill');
    });
  });

  it('of an agent: its sidecar keeps serving; the restarted agent adopts it', async () => {
    await run('kill -9 agent', "SIGKILL api-1's agent, restart after 2 s", async () => {
      await f.api[0].stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 2000));
      await f.api[0].start();
    });
  });

  it('of the registry: sidecars keep serving what they have', async () => {
    await run('kill -9 registry', 'SIGKILL the registry, restart after 3 s', async () => {
      await f.mesh.stopRegistry('SIGKILL');
      await new Promise((r) => setTimeout(r, 3000));
      await f.mesh.startRegistry();
    });
  });
});
