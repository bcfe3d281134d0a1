/**
 * Test hosts in network namespaces: a bridge on this machine and, per host, a namespace with
 * a veth into the bridge and its own address in a subnet used only by these test hosts.
 * Needs root and `ip` (iproute2). Processes inside are started by the test and ended by PID;
 * `destroy()` removes every namespace, veth and the bridge, also after a failed test.
 * `startNetnsMesh()` builds the api/web mesh the namespace tests share on such a network.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, runCli, startCli, stopAllDaemons } from './cli.js';
import { registerArgs, type ServiceSpec } from './mesh.js';

export interface NetHost {
  name: string;
  ns: string;
  address: string;
  /** The host-side end of the veth: taking it down cuts the host off. */
  hostVeth: string;
}

export interface TestNetwork {
  id: string;
  bridge: string;
  gateway: string;
  hosts: NetHost[];
  /** Runs a command inside a host's namespace (the test owns the process). */
  exec(
    host: NetHost,
    cmd: string,
    args: string[],
    opts?: { env?: Record<string, string>; buffer?: boolean },
  ): ResultPromise;
  cutOff(host: NetHost): Promise<void>;
  reconnect(host: NetHost): Promise<void>;
  destroy(): Promise<void>;
}

const PREFIX = 'mshtest';
/** Names of namespaces, links and the bridge start with this (a test file may pass its own). */
export interface NetnsNames {
  prefix?: string;
}

export async function netnsAvailable({ prefix = PREFIX }: NetnsNames = {}): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const probe = `${prefix}-probe-${randomBytes(2).toString('hex')}`;
  const add = await execa('ip', ['netns', 'add', probe], { reject: false });
  if (add.exitCode !== 0) return false;
  await execa('ip', ['netns', 'del', probe], { reject: false });
  return true;
}

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

/** Makes `count` hosts on a fresh bridge; subnet 10.213.N.0/24 with N picked from the id. */
export async function createNetwork(names: string[], { prefix = PREFIX }: NetnsNames = {}): Promise<TestNetwork> {
  const id = randomBytes(2).toString('hex');
  const octet = (parseInt(id, 16) % 200) + 20;
  const bridge = `${prefix}${id}`;
  const gateway = `10.213.${octet}.1`;
  const hosts: NetHost[] = [];
  const procs = new Set<ResultPromise>();
  const net: TestNetwork = {
    id,
    bridge,
    gateway,
    hosts,
    exec(host, cmd, args, opts = {}) {
      const p = execa('ip', ['netns', 'exec', host.ns, cmd, ...args], {
        reject: false,
        stdin: 'ignore',
        all: true,
        buffer: opts.buffer ?? false,
        env: opts.env ?? {},
      });
      procs.add(p);
      void p.finally(() => procs.delete(p));
      return p;
    },
    cutOff: (h) => ip('link', 'set', h.hostVeth, 'down'),
    reconnect: (h) => ip('link', 'set', h.hostVeth, 'up'),
    async destroy() {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all([...procs].map((p) => p.catch(() => undefined)));
      for (const h of hosts) {
        // Anything still running in the namespace was started by this test: end it by PID.
        const pids = await execa('ip', ['netns', 'pids', h.ns], { reject: false });
        for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // Gone.
          }
        }
        await execa('ip', ['link', 'del', h.hostVeth], { reject: false });
        await execa('ip', ['netns', 'del', h.ns], { reject: false });
      }
      await execa('ip', ['link', 'del', bridge], { reject: false });
    },
  };
  try {
    await ip('link', 'add', bridge, 'type', 'bridge');
    await ip('addr', 'add', `${gateway}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (const [i, name] of names.entries()) {
      const ns = `${prefix}-${id}-${i}`;
      const hostVeth = `${prefix}${id}v${i}`;
      const address = `10.213.${octet}.${10 + i}`;
      await ip('netns', 'add', ns);
      await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('link', 'set', hostVeth, 'master', bridge);
      await ip('link', 'set', hostVeth, 'up');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', ns, 'route', 'add', 'default', 'via', gateway);
      hosts.push({ name, ns, address, hostVeth });
    }
  } catch (e) {
    await net.destroy();
    throw e;
  }
  return net;
}

/** What `ip` shows of this network: for tests that check nothing is left behind. */
export async function leftovers(id: string, { prefix = PREFIX }: NetnsNames = {}): Promise<string[]> {
  const ns = (await execa('ip', ['netns', 'list'], { reject: false })).stdout;
  const links = (await execa('ip', ['-o', 'link', 'show'], { reject: false })).stdout;
  return [...ns.split('\n'), ...links.split('\n')].filter(
    (l) => l.includes(`${prefix}${id}`) || l.includes(`${prefix}-${id}`),
  );
}

export interface ProbeResult {
  statuses: Record<string, number>;
  apps: Record<string, number>;
}

/** A mesh across namespaces: a registry on the bridge, api on hosts A and B, web on W calling api:18000. */
export interface NetnsMesh {
  net: TestNetwork;
  dir: string;
  env: Record<string, string>;
  /** Indexes of the hosts in `net.hosts`. */
  A: number;
  B: number;
  W: number;
  /** A CLI command as the mesh's admin. */
  admin(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** `count` GETs from `host` to its api:18000 upstream, one after another: answers by status and by app. */
  probe(host: NetHost, count: number): Promise<ProbeResult>;
  /** Ends every process the mesh started and removes the network and the directory. */
  close(): Promise<void>;
}

const APP = fileURLToPath(new URL('./app-server.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('./http-probe.mjs', import.meta.url));

/**
 * Starts the api/web mesh of the namespace tests: the registry (lease 5 s) listens on the
 * bridge, each host runs a real agent in its namespace (joined with a single-use token scoped
 * to its one service), api hosts run an app on :9000 with an HTTP check, web may call api.
 */
export async function startNetnsMesh(names: NetnsNames = {}): Promise<NetnsMesh> {
  const [A, B, W] = [0, 1, 2];
  const net = await createNetwork(['host-a', 'host-b', 'host-w'], names);
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-netns-'));
  const env = { MESHCTL_CONFIG_DIR: join(dir, 'cli') };
  const close = async () => {
    try {
      await stopAllDaemons();
    } finally {
      await net.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  };
  const must = (what: string, r: { exitCode: number; stderr: string }) => {
    if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}): ${r.stderr}`);
  };
  try {
    const init = await runCli(
      [
        'init',
        '--server',
        '--data-dir',
        join(dir, 'reg'),
        '--bind',
        `${net.gateway}:0`,
        '--advertise',
        net.gateway,
      ].concat(['--lease-ttl', '5s', '--json', '--no-save']),
      env,
    );
    must('init --server', init);
    const made = JSON.parse(init.stdout) as { caFingerprint: string; adminToken: string; caCertPath: string };
    const reg = startCli(['registry', 'start', '--data-dir', join(dir, 'reg')], env);
    const url = (await reg.waitFor(/listening on (https:\/\/[\d.]+:\d+)/))[1]!;
    const admin = (args: string[]) =>
      runCli([...args, '--registry', url, '--token', made.adminToken, '--ca-file', made.caCertPath], env);

    for (const [i, host] of net.hosts.entries()) {
      const data = join(dir, host.name);
      await mkdir(data, { recursive: true });
      // Each host gets a single-use join token scoped to the one service it serves.
      const token = await admin(['token', 'create', '--service', i === W ? 'web' : 'api', '--uses', '1', '--json']);
      must('token create', token);
      const joined = await runCli(
        ['init', '--join', url, '--token', (JSON.parse(token.stdout) as { token: string }).token]
          .concat(['--ca-fingerprint', made.caFingerprint, '--node-name', host.name, '--advertise', host.address])
          .concat([
            '--data-dir',
            data,
            '--socket',
            join(data, 'agent.sock'),
            '--services-dir',
            join(data, 'services.d'),
          ]),
        env,
      );
      must(`init --join (${host.name})`, joined);
      const agent = net.exec(host, process.execPath, [CLI, 'agent', 'start', '--data-dir', data], {
        env: { ...env, MESHCTL_LOG_LEVEL: 'info' },
      });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        agent.all?.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('agent started')) resolve();
        });
        void agent.then(() => reject(new Error(`agent ${host.name} exited: ${out}`)));
      });
      // Apps listen where their sidecar forwards: on loopback (and the host address, for the check).
      if (i !== W) void net.exec(host, process.execPath, [APP, '0.0.0.0', '9000', `api-${host.name}`]);
    }
    const register = (h: NetHost, s: ServiceSpec) =>
      runCli([...registerArgs({ address: h.address, protocol: 'http', ...s }), '--data-dir', join(dir, h.name)], env);
    for (const i of [A, B]) {
      const h = net.hosts[i]!;
      must(
        'register api',
        await register(h, {
          name: 'api',
          port: 9000,
          extra: ['--check', `http://${h.address}:9000/`, '--interval', '500ms'],
        }),
      );
    }
    must('register web', await register(net.hosts[W]!, { name: 'web', port: 9100, upstreams: ['api:18000'] }));
    must('intention allow', await admin(['intention', 'allow', 'web', 'api']));

    const probe = async (host: NetHost, count: number): Promise<ProbeResult> => {
      const r = await net.exec(host, process.execPath, [PROBE, '18000', String(count)], { buffer: true });
      return JSON.parse(
        String(r.all ?? '')
          .trim()
          .split('\n')
          .pop() ?? '{}',
      ) as ProbeResult;
    };
    return { net, dir, env, A, B, W, admin, probe, close };
  } catch (e) {
    await close();
    throw e;
  }
}
