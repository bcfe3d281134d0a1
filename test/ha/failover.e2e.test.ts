/**
 * High availability as a user sees it: two registries on one 3-member etcd, three agents
 * joined through the first, a service called through sidecars. `kill -9` of the registry the
 * agents use, then of the etcd leader, each under a loop of registrations and a loop of
 * requests: nothing acknowledged is lost, agents move, no request fails. Without a quorum a
 * registry answers reads with an error (503 MESH_ERR_STORE_UNAVAILABLE), never old data.
 */
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/api/registry-client.js';
import { createKeyAndCsr, nodeId } from '../../src/ca/index.js';
import { runCli, startCli, type CliDaemon } from '../helpers/cli.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { ETCD_PORTS, HOSTS } from '../helpers/hosts.js';
import { getStatus, killProxies, registerArgs, startApp, type TestApp } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [REG_A, REG_B, HOST_1, HOST_2, HOST_3] = HOSTS.ha;
const UP = 18650;
const LOOP_NODE = 'loop-node';
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });

const get = (port: number) => getStatus(port, { agent: httpAgent });

interface Made {
  adminToken?: string;
  joinToken?: string;
  caFingerprint: string;
  caCertPath: string;
  meshKeyPath: string;
  advertiseUrl: string;
}

describe('HA: two registries on a 3-member etcd, three agents', () => {
  let dir = '';
  let etcd: EtcdCluster;
  let env: Record<string, string>;
  let made: Made;
  let caPem = '';
  const registries = new Map<string, CliDaemon>();
  const agents: Array<{ name: string; dataDir: string; daemon: CliDaemon }> = [];
  const clients: RegistryClient[] = [];
  let api: TestApp;
  let admin: (url: string) => RegistryClient;
  const url = (host: string) => `https://${host}:7443`;

  const startRegistry = async (name: string): Promise<void> => {
    const d = startCli(['registry', 'start', '--data-dir', join(dir, name)], env);
    await d.waitFor(/listening on/, 30_000);
    registries.set(name, d);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-ha-'));
    env = { MESHCTL_CONFIG_DIR: join(dir, 'cli') };
    etcd = await startEtcdCluster({ basePort: ETCD_PORTS.ha, dir: join(dir, 'etcd') });
    const endpoints = etcd.endpoints.join(',');
    const init = async (name: string, host: string, extra: string[]): Promise<Made> => {
      const r = await runCli(
        [
          'init',
          '--server',
          '--store',
          'etcd',
          '--etcd-endpoints',
          endpoints,
          '--data-dir',
          join(dir, name),
          '--bind',
          `${host}:7443`,
          '--advertise',
          host,
          '--lease-ttl',
          '5s',
          '--default-intention',
          'allow',
          '--json',
          '--no-save',
          ...extra,
        ],
        env,
      );
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Made;
    };
    made = await init('reg-a', REG_A!, []);
    await init('reg-b', REG_B!, ['--mesh-key', made.meshKeyPath]);
    caPem = await readFile(made.caCertPath, 'utf8');
    const byUrl = new Map<string, RegistryClient>();
    admin = (u) => {
      let c = byUrl.get(u);
      if (!c) {
        c = new RegistryClient({ baseUrl: u, ca: caPem, token: made.adminToken!, timeoutMs: 15_000 });
        byUrl.set(u, c);
        clients.push(c);
      }
      return c;
    };
    await startRegistry('reg-a');
    await startRegistry('reg-b');

    // Agents join through registry A only; they learn of B from A's peer list.
    for (const [i, host] of [HOST_1, HOST_2, HOST_3].entries()) {
      const name = `node-${i + 1}`;
      const dataDir = join(dir, name);
      const { token } = await admin(url(REG_A!)).createToken(`join ${name}`, undefined, { anyService: true });
      const j = await runCli(
        [
          'init',
          '--join',
          url(REG_A!),
          '--token',
          token,
          '--ca-fingerprint',
          made.caFingerprint,
          '--node-name',
          name,
          '--advertise',
          host!,
          '--data-dir',
          dataDir,
          '--socket',
          join(dataDir, 'agent.sock'),
          '--services-dir',
          join(dataDir, 'services.d'),
          '--json',
        ],
        env,
      );
      expect(j.exitCode, j.stderr).toBe(0);
      const daemon = startCli(['agent', 'start', '--data-dir', dataDir], env);
      await daemon.waitFor(/agent started/, 30_000);
      agents.push({ name, dataDir, daemon });
    }
    // A node of its own for the registration loop's instances: no agent owns it, so no
    // anti-entropy removes them.
    const { keyPem: _key, csrPem } = await createKeyAndCsr({ spiffeId: nodeId('mesh.local', LOOP_NODE) });
    const { token } = await admin(url(REG_A!)).createToken('join the loop node', undefined, { anyService: true });
    const joiner = new RegistryClient({ baseUrl: url(REG_A!), ca: caPem, token });
    clients.push(joiner);
    await joiner.join({ nodeName: LOOP_NODE, address: HOST_3!, csr: csrPem });
    api = await startApp('api', HOST_1!);
    const reg = (i: number, args: string[]) =>
      runCli([...args, '--data-dir', agents[i]!.dataDir], env).then((r) => expect(r.exitCode, r.stderr).toBe(0));
    await reg(0, registerArgs({ name: 'api', port: api.port, address: HOST_1!, protocol: 'http' }));
    await reg(
      1,
      registerArgs({ name: 'web', port: 9300, address: HOST_2!, protocol: 'http', upstreams: [`api:${UP}`] }),
    );
    await eventually(async () => (await get(UP)) === 200, {
      what: 'web -> api through the sidecars',
      timeoutMs: 60_000,
    });
    // Every agent has heard of both registries before anything is killed.
    await eventually(
      async () => {
        const nodes = (await admin(url(REG_B!)).nodes()).nodes.filter((n) => n.name !== LOOP_NODE);
        return nodes.length === 3 && nodes.every((n) => n.alive && n.registry === url(REG_A!));
      },
      { what: 'three agents on registry A', timeoutMs: 60_000 },
    );
  }, 240_000);

  afterAll(async () => {
    httpAgent.destroy();
    for (const c of clients) c.close();
    for (const a of agents) await a.daemon.kill('SIGKILL');
    for (const a of agents) await killProxies(a.dataDir);
    for (const d of registries.values()) await d.kill('SIGKILL');
    await api?.stop();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the registration and request loops while `during` runs; returns what they saw. */
  async function underLoops(during: () => Promise<void>): Promise<{ acked: string[]; statuses: number[] }> {
    const acked: string[] = [];
    const statuses: number[] = [];
    let running = true;
    const targets = [admin(url(REG_A!)), admin(url(REG_B!))];
    let at = 0;
    const registrations = (async () => {
      for (let i = 0; running && i < 2_000; i++) {
        const name = `loop-${statuses.length}-${i}`;
        for (let tries = 0; tries < targets.length; tries++) {
          try {
            await targets[at]!.register({ name, port: 30_000 + (i % 1000) }, LOOP_NODE);
            acked.push(name);
            break;
          } catch {
            // As the CLI does: the other registry.
            at = (at + 1) % targets.length;
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const requests = (async () => {
      for (let i = 0; running && i < 5_000; i++) {
        statuses.push(await get(UP));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await during();
    } finally {
      running = false;
      await Promise.all([registrations, requests]);
    }
    return { acked, statuses };
  }

  it('kill -9 of the registry the agents use: agents move to the other, nothing acknowledged is lost, no request fails', async () => {
    const { acked, statuses } = await underLoops(async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      await registries.get('reg-a')!.kill('SIGKILL');
      registries.delete('reg-a');
      await eventually(
        async () => {
          const nodes = (await admin(url(REG_B!)).nodes()).nodes.filter((n) => n.name !== LOOP_NODE);
          return nodes.length === 3 && nodes.every((n) => n.alive && n.registry === url(REG_B!));
        },
        { what: 'all agents on registry B', timeoutMs: 30_000 },
      );
      await new Promise((r) => setTimeout(r, 1_000));
    });
    expect(acked.length).toBeGreaterThan(10);
    const { instances } = await admin(url(REG_B!)).allInstances();
    const present = new Set(instances.map((i) => i.name));
    expect(acked.filter((n) => !present.has(n))).toEqual([]);
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // As the operator sees it: the CLI, given both registries, still answers with A dead.
    const catalog = (registries: string) =>
      runCli(
        [
          'catalog',
          'services',
          '--registry',
          registries,
          '--token',
          made.adminToken!,
          '--ca-file',
          made.caCertPath,
          '--json',
        ],
        env,
      );
    const withADead = await catalog(`${url(REG_A!)},${url(REG_B!)}`);
    expect(withADead.exitCode, withADead.stderr).toBe(0);
    expect(
      (JSON.parse(withADead.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name),
    ).toContain('api');
    // The agents' blocking watches resumed on B from the revision they had: a change made
    // there now reaches the sidecars (web's agent hears the intention, its sidecar refuses),
    // and so does the change back.
    const b = admin(url(REG_B!));
    await b.putIntention('web', 'api', 'deny', 'failover test');
    await eventually(async () => (await get(UP)) === 403, { what: 'a deny made on B reaches the sidecar' });
    await b.deleteIntention('web', 'api');
    await eventually(async () => (await get(UP)) === 200, { what: 'the deny removed on B reaches the sidecar' });
    // The killed registry, restarted, rejoins without a manual step: it is among the peers
    // again and answers the CLI itself.
    await startRegistry('reg-a');
    await eventually(async () => (await admin(url(REG_B!)).peers()).peers.length === 2, { what: 'A back among peers' });
    expect((await admin(url(REG_A!)).services()).services.map((s) => s.name)).toContain('api');
    const fromA = await catalog(url(REG_A!));
    expect(fromA.exitCode, fromA.stderr).toBe(0);
    expect((JSON.parse(fromA.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name)).toContain(
      'api',
    );
  }, 180_000);

  it('kill -9 of the etcd leader: writes resume after the election, nothing acknowledged is lost, no request fails', async () => {
    const { acked, statuses } = await underLoops(async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      const leader = await etcd.leader();
      await etcd.kill(leader);
      await new Promise((r) => setTimeout(r, 4_000));
      await etcd.restart(leader);
      await new Promise((r) => setTimeout(r, 1_000));
    });
    expect(acked.length).toBeGreaterThan(10);
    const { instances } = await admin(url(REG_B!)).allInstances();
    const present = new Set(instances.map((i) => i.name));
    expect(acked.filter((n) => !present.has(n))).toEqual([]);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Writes go through again on the new leader (the old one is back as a follower).
    await eventually(
      async () => (await admin(url(REG_B!)).register({ name: 'after-election', port: 31_000 }, LOOP_NODE)).revision > 0,
      { what: 'a write after the election' },
    );
  }, 180_000);

  it('without a quorum a registry answers reads with 503 MESH_ERR_STORE_UNAVAILABLE, never the old value; traffic keeps flowing', async () => {
    const b = admin(url(REG_B!));
    expect((await b.services()).services.map((s) => s.name)).toContain('api');
    const leader = await etcd.leader();
    const others = [0, 1, 2].filter((i) => i !== leader);
    await etcd.kill(others[0]!);
    await etcd.kill(others[1]!);
    try {
      await expect(b.services()).rejects.toMatchObject({ code: 'MESH_ERR_STORE_UNAVAILABLE' });
      await expect(b.nodes()).rejects.toMatchObject({ code: 'MESH_ERR_STORE_UNAVAILABLE' });
      // The sidecars fail static on their last snapshot.
      expect(await get(UP)).toBe(200);
    } finally {
      await etcd.restart(others[0]!);
      await etcd.restart(others[1]!);
    }
    await eventually(async () => (await b.services()).services.length > 0, { what: 'reads back with the quorum' });
  }, 120_000);
});
