/**
 * Agents on three registries of one 3-member etcd, as real processes: the agents join knowing
 * one or two registries (R1; R1 and R2; R2) and learn the others from `/v1/status/peers`.
 * `kill -9` of the registry two of them are on; a third registry (R0, whose URL sorts before
 * the others', so the agents' lists grow in front of the registry they are on) appears and no
 * agent moves; the killed one restarted rejoins; then `kill -9` of the registry all of them
 * are on, while intentions change every 40 ms: they move to a living registry, every watch
 * asks from the revision it had, each change is applied once and in order, and what the agent
 * reports (`meshctl agent info`, `meshctl status`) is where its lease and its blocking queries
 * really are (each registry holds the queries of exactly the agents that say they are on it).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILOVER_CODES, RegistryClient } from '../../src/api/registry-client.js';
import { MeshError } from '../../src/errors/index.js';
import { runCli, startCli, type CliDaemon } from '../helpers/cli.js';
import { initEtcdRegistry } from '../helpers/ha-mesh.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { ETCD_PORTS, HA_PORTS, HOSTS } from '../helpers/hosts.js';
import { eventually } from '../helpers/registry.js';

const [H_R0, H_R1, H_R2, H_1, H_2, H_3] = HOSTS.haThree;
const url = (host: string) => `https://${host}:${HA_PORTS.threeRegistries}`;
const R0 = url(H_R0!);
const R1 = url(H_R1!);
const R2 = url(H_R2!);
const NAME: Record<string, string> = { [R0]: 'r0', [R1]: 'r1', [R2]: 'r2' };
/** The watches every agent holds, sidecars or not. */
const WATCHES = ['intentions', 'config entries', 'revoked certificates'];
/** Blocking queries an agent without sidecars holds: one per watch. */
const perAgent = WATCHES.length;

/** One answer of an agent's blocking watch, from its debug log ('watch answered'). */
interface WatchAnswer {
  watch: string;
  index: number;
  revision: number;
  changed: boolean;
  size: number;
  registry: string;
}

/** The JSON log records of an agent with this message, in order. */
function records<T>(output: string, msg: string): T[] {
  const out: T[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes(`"${msg}"`)) continue;
    try {
      const rec = JSON.parse(line) as T & { msg?: string };
      if (rec.msg === msg) out.push(rec);
    } catch {
      // Not a log record (a line of something else).
    }
  }
  return out;
}

const watchAnswers = (output: string, watch?: string) =>
  records<WatchAnswer>(output, 'watch answered').filter((a) => watch === undefined || a.watch === watch);

interface Made {
  adminToken?: string;
  caFingerprint: string;
  caCertPath: string;
  meshKeyPath: string;
}

interface Agent {
  name: string;
  dataDir: string;
  daemon: CliDaemon;
}

describe('HA: three registries on a 3-member etcd, agents that learn them and fail over', () => {
  let dir = '';
  let etcd: EtcdCluster;
  let env: Record<string, string>;
  let made: Made;
  let caPem = '';
  const registries = new Map<string, CliDaemon>();
  const agents: Agent[] = [];
  const byUrl = new Map<string, RegistryClient>();
  const admin = (u: string): RegistryClient => {
    let c = byUrl.get(u);
    if (!c) {
      c = new RegistryClient({ baseUrl: u, ca: caPem, token: made.adminToken!, timeoutMs: 15_000 });
      byUrl.set(u, c);
    }
    return c;
  };

  const startRegistry = async (u: string): Promise<void> => {
    const d = startCli(['registry', 'start', '--data-dir', join(dir, NAME[u]!)], env);
    registries.set(u, d);
    await d.waitFor(/listening on/, 30_000);
  };
  const killRegistry = async (u: string): Promise<void> => {
    await registries.get(u)!.kill('SIGKILL');
    registries.delete(u);
  };

  /** What the agent says about itself (`meshctl agent info --json`, i.e. /v1/agent/self). */
  const info = async (a: Agent): Promise<{ registry: string; reachable: boolean }> => {
    const r = await runCli(['agent', 'info', '--json', '--data-dir', a.dataDir], env);
    expect(r.exitCode, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { sync: { registry: string; reachable: boolean } }).sync;
  };
  /** The registry each node is on, as `meshctl status` on the agent's host shows it. */
  const statusNodes = async (a: Agent): Promise<Map<string, string | undefined>> => {
    const r = await runCli(['status', '--once', '--json', '--data-dir', a.dataDir], env);
    expect(r.exitCode, r.stderr).toBe(0);
    const nodes = (JSON.parse(r.stdout) as { nodes: Array<{ name: string; registry?: string }> }).nodes;
    return new Map(nodes.map((n) => [n.name, n.registry]));
  };
  /** Registries the agent has logged it knows ('registries changed'), last first. */
  const known = (a: Agent): string[] =>
    records<{ registries: string[] }>(a.daemon.output(), 'registries changed').at(-1)?.registries ?? [];
  /** Blocking queries each living registry holds now. */
  const held = async (urls: string[]): Promise<Map<string, number>> =>
    new Map(await Promise.all(urls.map(async (u) => [u, (await admin(u).status()).blockingQueries] as const)));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-ha3-'));
    env = { MESHCTL_CONFIG_DIR: join(dir, 'cli') };
    etcd = await startEtcdCluster({ basePort: ETCD_PORTS.haThree, dir: join(dir, 'etcd') });
    const init = (u: string, host: string, extra: string[]): Promise<Made> =>
      initEtcdRegistry<Made>({
        endpoints: etcd.endpoints,
        dataDir: join(dir, NAME[u]!),
        bind: `${host}:${HA_PORTS.threeRegistries}`,
        advertise: host,
        extra: ['--lease-ttl', '5s', ...extra],
        env,
      });
    made = await init(R1, H_R1!, []);
    await init(R2, H_R2!, ['--mesh-key', made.meshKeyPath]);
    await init(R0, H_R0!, ['--mesh-key', made.meshKeyPath]);
    caPem = await readFile(made.caCertPath, 'utf8');
    // R0 comes later (the third registry).
    await startRegistry(R1);
    await startRegistry(R2);

    // node-1 joins through R1 and knows only it; node-2 knows R1 and R2; node-3 only R2.
    const plan: Array<{ name: string; host: string; registries: string[] }> = [
      { name: 'node-1', host: H_1!, registries: [R1] },
      { name: 'node-2', host: H_2!, registries: [R1, R2] },
      { name: 'node-3', host: H_3!, registries: [R2] },
    ];
    for (const p of plan) {
      const dataDir = join(dir, p.name);
      const { token } = await admin(p.registries[0]!).createToken(`join ${p.name}`, undefined, { anyService: true });
      const j = await runCli(
        [
          'init',
          '--join',
          p.registries[0]!,
          '--token',
          token,
          '--ca-fingerprint',
          made.caFingerprint,
          '--node-name',
          p.name,
          '--advertise',
          p.host,
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
      // The operator lists the registries this host knows in agent.json.
      const configPath = join(dataDir, 'agent.json');
      const config = JSON.parse(await readFile(configPath, 'utf8')) as { registries: string[] };
      await writeFile(configPath, JSON.stringify({ ...config, registries: p.registries }, null, 2));
      // At debug level the agent logs each watch answer ('watch answered'): the tests follow them.
      const daemon = startCli(['agent', 'start', '--data-dir', dataDir], { ...env, MESHCTL_LOG_LEVEL: 'debug' });
      agents.push({ name: p.name, dataDir, daemon });
      await daemon.waitFor(/agent started/, 30_000);
    }
    await eventually(
      async () => {
        const nodes = (await admin(R2).nodes()).nodes;
        const on = new Map(nodes.map((n) => [n.name, n.alive ? n.registry : undefined]));
        return on.get('node-1') === R1 && on.get('node-2') === R1 && on.get('node-3') === R2;
      },
      { what: 'node-1 and node-2 on R1, node-3 on R2', timeoutMs: 60_000 },
    );
    // Every agent has learned both registries from the peer list, whichever it was told.
    await eventually(() => agents.every((a) => known(a).includes(R1) && known(a).includes(R2)), {
      what: 'every agent knowing R1 and R2',
      timeoutMs: 30_000,
    });
  }, 240_000);

  afterAll(async () => {
    for (const a of agents) await a.daemon.kill('SIGKILL');
    for (const d of registries.values()) await d.kill('SIGKILL');
    for (const c of byUrl.values()) c.close();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('kill -9 of the registry two agents are on: they move to the other, and say so', async () => {
    await killRegistry(R1);
    const t0 = Date.now();
    await eventually(async () => (await Promise.all(agents.map(info))).every((s) => s.registry === R2 && s.reachable), {
      what: 'every agent saying it is on R2',
      timeoutMs: 30_000,
    });
    console.log(`after kill -9 of R1, every agent said R2 within ${Date.now() - t0} ms`);
    await eventually(async () => [...(await statusNodes(agents[0]!)).values()].every((r) => r === R2), {
      what: 'meshctl status: every node on R2',
    });
    // Every watch of every agent is held on R2 now: R2 holds as many per agent as it has watches.
    await eventually(async () => (await held([R2])).get(R2) === perAgent * agents.length, {
      what: `R2 holding ${perAgent} queries per agent`,
    }).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify([...(await held([R2]))])}`);
    });
  }, 90_000);

  it('a third registry appears, sorting before the one they are on: every agent learns it and none moves', async () => {
    await startRegistry(R0);
    await eventually(() => agents.every((a) => known(a).includes(R0)), {
      // Agents refresh the peer list with each full sync (every 30 s, jittered).
      what: 'every agent knowing R0 from the peer list',
      timeoutMs: 75_000,
    });
    // node-1's list is [R1, R0, R2] now (configured first, then the peers, sorted): R2 moved
    // from the second place to the third. Every agent is still on R2 and holds nothing on R0.
    for (const a of agents) expect(known(a), a.name).toContain(R2);
    expect((await Promise.all(agents.map(info))).map((s) => s.registry)).toEqual([R2, R2, R2]);
    // A change made through R0 reaches every agent through R2, its watches held there.
    const before = await held([R0, R2]);
    const { revision } = await admin(R0).putIntention('ha3-src', 'ha3-dst', 'allow', 'third registry');
    for (const a of agents)
      await eventually(
        () => watchAnswers(a.daemon.output(), 'intentions').some((w) => w.revision >= revision && w.changed),
        { what: `${a.name} hearing the change made on R0` },
      );
    for (const a of agents) {
      const answers = watchAnswers(a.daemon.output(), 'intentions').filter((w) => w.revision >= revision);
      expect(
        answers.map((w) => w.registry),
        a.name,
      ).toEqual(answers.map(() => R2));
    }
    expect(before.get(R0)).toBe(0);
    expect((await Promise.all(agents.map(info))).map((s) => s.registry)).toEqual([R2, R2, R2]);
    // The registry killed before, started again, rejoins without a manual step: it is among
    // the peers again and answers; no agent moves back to it.
    await startRegistry(R1);
    await eventually(async () => (await admin(R2).peers()).peers.length === 3, { what: 'R1 back among the peers' });
    await eventually(() => agents.every((a) => known(a).includes(R1)), {
      what: 'every agent knowing R1 again',
      timeoutMs: 75_000,
    });
    expect((await Promise.all(agents.map(info))).map((s) => s.registry)).toEqual([R2, R2, R2]);
    expect((await held([R0, R1])).get(R0)).toBe(0);
  }, 200_000);

  it('kill -9 of the registry they are on, under a loop of changes: they move to a living one, every watch resumes from its revision, each change once, in order; agent info and meshctl status name where their lease and queries are', async () => {
    const living = [R0, R1];
    const beforeView = await admin(R1).intentions();
    const acked: number[] = [];
    let uncertain = 0;
    const loop = { running: true };
    const changes = (async () => {
      for (let i = 0; loop.running && i < 2_000; i++) {
        try {
          acked.push((await admin(R1).putIntention(`ha3-${i}`, 'ha3-dst', 'allow', 'kill -9 under changes')).revision);
        } catch (e) {
          // etcd busy (a member restarting): the write may or may not have been applied.
          if (!(e instanceof MeshError && FAILOVER_CODES.has(e.code))) throw e;
          uncertain++;
        }
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    const moreChanges = async (n: number) => {
      const from = acked.length;
      await eventually(() => acked.length >= from + n, { what: `${n} more changes` });
    };
    let moved: string[] = [];
    try {
      await moreChanges(10);
      await killRegistry(R2);
      const t0 = Date.now();
      await eventually(
        async () => {
          const s = await Promise.all(agents.map(info));
          if (!s.every((x) => living.includes(x.registry) && x.reachable)) return false;
          moved = s.map((x) => x.registry);
          return true;
        },
        { what: 'every agent saying it is on a living registry', timeoutMs: 30_000 },
      );
      console.log(
        `after kill -9 of R2, agents on ${moved.map((u) => NAME[u]).join(', ')} within ${Date.now() - t0} ms`,
      );
      await moreChanges(15);
    } finally {
      loop.running = false;
      await changes;
    }
    const last = acked.at(-1)!;
    const total = (await admin(R1).intentions()).intentions.length;
    const expected = (r: number) => beforeView.intentions.length + acked.filter((v) => v <= r).length;
    expect(total - expected(last)).toBeGreaterThanOrEqual(0);
    expect(total - expected(last)).toBeLessThanOrEqual(uncertain);
    for (const a of agents)
      await eventually(
        () => {
          const l = watchAnswers(a.daemon.output(), 'intentions').at(-1);
          return l !== undefined && l.revision >= last && l.size === total;
        },
        { what: `${a.name} has every change`, timeoutMs: 30_000 },
      );
    for (const [i, a] of agents.entries()) {
      const output = a.daemon.output();
      // Every watch asked each question from the revision of the answer before it, through
      // both kills, on whichever registry answered.
      for (const watch of WATCHES) {
        const chain = watchAnswers(output, watch);
        expect(chain.length, `${a.name} ${watch}`).toBeGreaterThan(0);
        expect(chain[0]!.index, `${a.name} ${watch}`).toBe(0);
        const broken = chain
          .slice(1)
          .map((v, j) => ({ asked: v.index, had: chain[j]!.revision, registry: v.registry }))
          .filter((v) => v.asked !== v.had);
        expect(broken, `${a.name} ${watch}: questions not asked from the revision the agent had`).toEqual([]);
      }
      // Every view is the store's at its revision; the views applied go forward, each change
      // once, in order, and end with all of them.
      const answers = watchAnswers(output, 'intentions').filter((v) => v.revision >= beforeView.revision);
      expect(
        answers.filter((v) => v.size < expected(v.revision) || v.size > expected(v.revision) + uncertain),
        `${a.name}: views unlike the store's at their revision`,
      ).toEqual([]);
      const applied = answers.filter((v) => v.changed);
      for (let j = 1; j < applied.length; j++) {
        expect(applied[j]!.revision, a.name).toBeGreaterThan(applied[j - 1]!.revision);
        expect(applied[j]!.size, a.name).toBeGreaterThan(applied[j - 1]!.size);
      }
      expect(applied.at(-1)!.size, a.name).toBe(total);
      // It answered from R2 until the kill, then only from the registry it says it is on.
      const runs = answers.map((v) => v.registry).filter((r, j, all) => j === 0 || all[j - 1] !== r);
      expect(runs, a.name).toEqual([R2, moved[i]]);
    }
    // One truth: the registry each agent reports is where its lease is (meshctl status, from
    // the node records) and where its blocking queries are held: each living registry holds
    // the queries of exactly the agents that say they are on it.
    const now = await Promise.all(agents.map(info));
    expect(now.map((s) => s.registry)).toEqual(moved);
    for (const a of agents)
      await eventually(
        async () => {
          const nodes = await statusNodes(a);
          return agents.every((b, i) => nodes.get(b.name) === moved[i]);
        },
        { what: `meshctl status on ${a.name}: every node where its agent says` },
      );
    await eventually(
      async () => {
        const h = await held(living);
        return living.every((u) => h.get(u) === perAgent * moved.filter((m) => m === u).length);
      },
      { what: `each living registry holding ${perAgent} queries per agent on it` },
    ).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify([...(await held(living))])}, agents on ${moved}`);
    });
  }, 150_000);

  it('the registry killed last, started again, rejoins without a manual step; the agents stay where they are', async () => {
    const where = (await Promise.all(agents.map(info))).map((s) => s.registry);
    await startRegistry(R2);
    await eventually(async () => (await admin(R0).peers()).peers.length === 3, { what: 'R2 back among the peers' });
    const catalog = await runCli(
      ['catalog', 'services', '--registry', R2, '--token', made.adminToken!, '--ca-file', made.caCertPath, '--json'],
      env,
    );
    expect(catalog.exitCode, catalog.stderr).toBe(0);
    // A change made on R2 reaches every agent, through the registry it is on.
    const { revision } = await admin(R2).putIntention('ha3-back', 'ha3-dst', 'allow', 'R2 back');
    for (const [i, a] of agents.entries())
      await eventually(
        () =>
          watchAnswers(a.daemon.output(), 'intentions').some(
            (w) => w.revision >= revision && w.changed && w.registry === where[i],
          ),
        { what: `${a.name} hearing the change made on R2 through ${where[i]}` },
      );
    expect((await Promise.all(agents.map(info))).map((s) => s.registry)).toEqual(where);
  }, 90_000);
});
