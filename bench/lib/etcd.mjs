/**
 * A 3-member etcd cluster of the bench's own (Debian `etcd-server`), on loopback ports reserved
 * for the bench in test/helpers/hosts.ts (ETCD_PORTS.bench: client, peer per member), data under
 * the bench's work dir. Started and stopped through procs.mjs, so clean-up stops exactly these
 * PIDs. Default Raft timings (100 ms heartbeat): the bench measures etcd as users run it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, startProcess, stopProcess } from './procs.mjs';

/** ETCD_PORTS.bench in test/helpers/hosts.ts. */
export const BENCH_ETCD_BASE_PORT = 23830;

/** The etcd binary's version line, or undefined when etcd is not installed. */
export function etcdVersion() {
  try {
    return execFileSync('etcd', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]
      ?.trim();
  } catch {
    return undefined;
  }
}

/**
 * @param {{ dir: string, basePort?: number, size?: number }} o
 * @returns {Promise<{ endpoints: string[], pids: number[], stop: () => Promise<void> }>}
 */
export async function startEtcd(o) {
  const size = o.size ?? 3;
  const base = o.basePort ?? BENCH_ETCD_BASE_PORT;
  mkdirSync(o.dir, { recursive: true });
  const members = Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    client: `http://127.0.0.1:${base + 2 * i}`,
    peer: `http://127.0.0.1:${base + 2 * i + 1}`,
  }));
  const cluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const procs = members.map((m) =>
    startProcess(
      `etcd-${m.name}`,
      'etcd',
      [
        `--name=${m.name}`,
        `--data-dir=${join(o.dir, m.name)}`,
        `--listen-client-urls=${m.client}`,
        `--advertise-client-urls=${m.client}`,
        `--listen-peer-urls=${m.peer}`,
        `--initial-advertise-peer-urls=${m.peer}`,
        `--initial-cluster=${cluster}`,
        '--initial-cluster-state=new',
        '--initial-cluster-token=meshctl-bench',
        '--logger=zap',
        '--log-level=warn',
      ],
      { logFile: join(o.dir, `${m.name}.log`) },
    ),
  );
  const stop = () => Promise.all(procs.map((p) => stopProcess(p, 3000))).then(() => undefined);
  const deadline = Date.now() + 30_000;
  try {
    for (const m of members) {
      for (;;) {
        const healthy = await fetch(`${m.client}/health`, { signal: AbortSignal.timeout(1_000) })
          .then((r) => r.json())
          .then((h) => h?.health === 'true')
          .catch(() => false);
        if (healthy) break;
        if (Date.now() > deadline)
          throw new Error(`etcd member ${m.name} not healthy after 30 s (log: ${join(o.dir, `${m.name}.log`)})`);
        await sleep(50);
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { endpoints: members.map((m) => m.client), pids: procs.map((p) => p.pid), stop };
}
