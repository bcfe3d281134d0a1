/**
 * The mesh's figures from whichever registry is asked (#12): two registries on one etcd, api's
 * agent on registry A, web's on registry B, web calling api through the sidecars. api's request
 * figures come from web's report (held by B) and its connections from its own (held by A):
 * each registry must show both, say it asked both registries, and name a peer that does not
 * answer rather than show less than the mesh without saying so. A registry's raw samples are
 * for the other registries only (the peer key derived from mesh.key).
 */
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/api/registry-client.js';
import { HttpClient } from '../../src/api/http-client.js';
import type { MetricsOverview, ServiceMetricsView } from '../../src/api/metrics.js';
import { runCli, startCli, type CliDaemon } from '../helpers/cli.js';
import { initEtcdRegistry } from '../helpers/ha-mesh.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { ETCD_PORTS, HOSTS } from '../helpers/hosts.js';
import { getStatus, killProxies, registerArgs, startApp, type TestApp } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [REG_A, REG_B, API_HOST, WEB_HOST] = HOSTS.haMetrics;
const PORT_A = 24700;
const PORT_B = 24701;
const UP = 24710;
const url = (host: string, port: number) => `https://${host}:${port}`;
const A = url(REG_A, PORT_A);
const B = url(REG_B, PORT_B);
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });

const get = (port: number) => getStatus(port, { agent: httpAgent });

interface Made {
  adminToken?: string;
  caFingerprint: string;
  caCertPath: string;
  meshKeyPath: string;
}

describe('HA: figures merged across two registries on etcd', () => {
  let dir = '';
  let etcd: EtcdCluster;
  let env: Record<string, string>;
  let made: Made;
  let caPem = '';
  const registries = new Map<string, CliDaemon>();
  const agents: Array<{ dataDir: string; daemon: CliDaemon }> = [];
  const clients: RegistryClient[] = [];
  let api: TestApp;
  let load: NodeJS.Timeout | undefined;
  const admin = (u: string) => {
    const c = new RegistryClient({ baseUrl: u, ca: caPem, token: made.adminToken!, timeoutMs: 10_000 });
    clients.push(c);
    return c;
  };

  const startRegistry = async (name: string): Promise<void> => {
    const d = startCli(['registry', 'start', '--data-dir', join(dir, name)], env);
    await d.waitFor(/listening on/, 30_000);
    registries.set(name, d);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-ha-metrics-'));
    env = { MESHCTL_CONFIG_DIR: join(dir, 'cli') };
    etcd = await startEtcdCluster({ basePort: ETCD_PORTS.haMetrics, dir: join(dir, 'etcd'), size: 1 });
    const init = (name: string, host: string, port: number, extra: string[]): Promise<Made> =>
      initEtcdRegistry<Made>({
        endpoints: etcd.endpoints,
        dataDir: join(dir, name),
        bind: `${host}:${port}`,
        advertise: host,
        extra,
        env,
      });
    made = await init('reg-a', REG_A, PORT_A, []);
    await init('reg-b', REG_B, PORT_B, ['--mesh-key', made.meshKeyPath]);
    caPem = await readFile(made.caCertPath, 'utf8');
    await startRegistry('reg-a');
    await startRegistry('reg-b');

    // api's agent joins through A, web's through B: each stays on the registry it joined.
    const join_ = async (name: string, host: string, registry: string) => {
      const dataDir = join(dir, name);
      const { token } = await admin(registry).createToken(`join ${name}`, undefined, { anyService: true });
      const j = await runCli(
        [
          'init',
          '--join',
          registry,
          '--token',
          token,
          '--ca-fingerprint',
          made.caFingerprint,
          '--node-name',
          name,
          '--advertise',
          host,
          '--data-dir',
          dataDir,
          '--socket',
          join(dataDir, 'agent.sock'),
          '--services-dir',
          join(dataDir, 'services.d'),
        ],
        env,
      );
      expect(j.exitCode, j.stderr).toBe(0);
      const daemon = startCli(['agent', 'start', '--data-dir', dataDir], env);
      await daemon.waitFor(/agent started/, 30_000);
      agents.push({ dataDir, daemon });
      return dataDir;
    };
    const apiDir = await join_('m-api', API_HOST, A);
    const webDir = await join_('m-web', WEB_HOST, B);
    api = await startApp('api', API_HOST);
    const reg = async (dataDir: string, args: string[]) => {
      const r = await runCli([...args, '--data-dir', dataDir], env);
      expect(r.exitCode, r.stderr).toBe(0);
    };
    await reg(apiDir, registerArgs({ name: 'api', port: api.port, address: API_HOST!, protocol: 'http' }));
    await reg(
      webDir,
      registerArgs({ name: 'web', port: 9300, address: WEB_HOST!, protocol: 'http', upstreams: [`api:${UP}`] }),
    );
    await eventually(async () => (await get(UP)) === 200, {
      what: 'web -> api through the sidecars',
      timeoutMs: 60_000,
    });
    const nodes = (await admin(A).nodes()).nodes;
    expect(Object.fromEntries(nodes.map((n) => [n.name, n.registry]))).toEqual({ 'm-api': A, 'm-web': B });
    // Steady traffic: 20 requests a second through web's sidecar.
    load = setInterval(() => void get(UP), 50);
  }, 180_000);

  afterAll(async () => {
    clearInterval(load);
    httpAgent.destroy();
    for (const c of clients) c.close();
    for (const a of agents) await a.daemon.kill('SIGKILL');
    for (const a of agents) await killProxies(a.dataDir);
    for (const d of registries.values()) await d.kill('SIGKILL');
    await api?.stop();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const apiOf = (o: MetricsOverview): ServiceMetricsView | undefined => o.services.find((s) => s.name === 'api');

  it("each registry shows the whole mesh's figures: callers' requests from one, the instance's connections from the other", async () => {
    for (const u of [A, B]) {
      const c = admin(u);
      await eventually(
        async () => {
          const o = await c.metricsOverview();
          const a = apiOf(o);
          return (
            a !== undefined &&
            a.requests > 0 &&
            a.callers === 1 &&
            a.instances.some((i) => i.node === 'm-api' && i.attempts > 0) &&
            (o.services.find((s) => s.name === 'web')?.upstreams ?? []).some((x) => x.service === 'api' && x.rps > 0)
          );
        },
        { what: `api's figures (web's calls, api's instance) on ${u}`, timeoutMs: 30_000 },
      );
      const o = await c.metricsOverview();
      expect(o.registries).toEqual({ asked: 2, missing: [] });
      expect(apiOf(o)!.failed).toBe(0);
    }
  });

  it('meshctl status against either registry shows api called', async () => {
    for (const u of [A, B]) {
      const r = await runCli(['status', '--json'], {
        ...env,
        MESHCTL_REGISTRY: u,
        MESHCTL_TOKEN: made.adminToken!,
        MESHCTL_CA_FILE: made.caCertPath,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as { metrics?: MetricsOverview };
      const a = s.metrics ? apiOf(s.metrics) : undefined;
      expect(a?.requests ?? 0, r.stdout).toBeGreaterThan(0);
      expect(s.metrics?.registries).toEqual({ asked: 2, missing: [] });
    }
  });

  it("refuses a registry's raw samples to anyone but the mesh's other registries", async () => {
    const noKey = new HttpClient({ baseUrl: A, ca: caPem, token: made.adminToken! });
    try {
      await expect(noKey.get('/v1/metrics/local')).rejects.toMatchObject({ code: 'MESH_ERR_UNAUTHENTICATED' });
    } finally {
      noKey.close();
    }
  });

  it('names a registry that does not answer, and the figures come back once its agents moved', async () => {
    await registries.get('reg-b')!.kill('SIGKILL');
    registries.delete('reg-b');
    // B's entry in the peer directory outlives it by its lease (10 s): meanwhile A says B is missing.
    const o = await admin(A).metricsOverview();
    expect(o.registries).toEqual({ asked: 2, missing: [B] });
    // web's agent moves to A and reports there: api's request figures are back, from A alone.
    await eventually(
      async () => {
        const x = await admin(A).metricsOverview();
        return (apiOf(x)?.requests ?? 0) > 0 && x.registries?.missing.length === 0;
      },
      { what: "api's request figures on A after B died", timeoutMs: 45_000 },
    );
  });
});
