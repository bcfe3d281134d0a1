/**
 * Test hosts in network namespaces: a bridge on this machine and, per host, a namespace with
 * a veth into the bridge and its own address in a subnet used only by these test hosts.
 * Needs root and `ip` (iproute2). Processes inside are started by the test and ended by PID;
 * `destroy()` removes every namespace, veth and the bridge, also after a failed test.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';

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

export async function netnsAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const probe = `${PREFIX}-probe-${randomBytes(2).toString('hex')}`;
  const add = await execa('ip', ['netns', 'add', probe], { reject: false });
  if (add.exitCode !== 0) return false;
  await execa('ip', ['netns', 'del', probe], { reject: false });
  return true;
}

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

/** Makes `count` hosts on a fresh bridge; subnet 10.213.N.0/24 with N picked from the id. */
export async function createNetwork(names: string[]): Promise<TestNetwork> {
  const id = randomBytes(2).toString('hex');
  const octet = (parseInt(id, 16) % 200) + 20;
  const bridge = `${PREFIX}${id}`;
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
      const ns = `${PREFIX}-${id}-${i}`;
      const hostVeth = `${PREFIX}${id}v${i}`;
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
export async function leftovers(id: string): Promise<string[]> {
  const ns = (await execa('ip', ['netns', 'list'], { reject: false })).stdout;
  const links = (await execa('ip', ['-o', 'link', 'show'], { reject: false })).stdout;
  return [...ns.split('\n'), ...links.split('\n')].filter(
    (l) => l.includes(`${PREFIX}${id}`) || l.includes(`${PREFIX}-${id}`),
  );
}
