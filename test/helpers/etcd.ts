/**
 * A real etcd cluster of our own for a test: `etcd` members (Debian `etcd-server`) on loopback
 * ports reserved in hosts.ts, data under a directory the test owns, each member stopped by its
 * PID. Heartbeat and election timeouts are shortened so elections take ~0.5 s, not seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface EtcdTls {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface EtcdClusterOptions {
  /** First of 2 × size consecutive ports (client, peer per member), from hosts.ts. */
  readonly basePort: number;
  readonly dir: string;
  readonly size?: number;
  /** Client TLS with client-certificate auth (peers stay plain: they are on loopback). */
  readonly tls?: EtcdTls;
  /** Raft heartbeat in ms (election timeout is 10×). */
  readonly heartbeatMs?: number;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  pid(): number | undefined;
}

export interface EtcdCluster {
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /** kill -9 of one member. */
  kill(index: number): Promise<void>;
  /** Starts a killed member again on its data directory. */
  restart(index: number): Promise<void>;
  /** Index of the member that is leader now (asked over the members' HTTP status). */
  leader(): Promise<number>;
  /** Kills every member by PID and removes the data directories. */
  stop(): Promise<void>;
}

const READY_MS = 30_000;

export async function startEtcdCluster(opts: EtcdClusterOptions): Promise<EtcdCluster> {
  const size = opts.size ?? 3;
  const heartbeat = opts.heartbeatMs ?? 50;
  const scheme = opts.tls ? 'https' : 'http';
  const members: Array<EtcdMember & { child?: ChildProcess }> = [];
  for (let i = 0; i < size; i++) {
    const clientPort = opts.basePort + 2 * i;
    const name = `m${i}`;
    members.push({
      name,
      clientUrl: `${scheme}://127.0.0.1:${clientPort}`,
      peerUrl: `http://127.0.0.1:${clientPort + 1}`,
      dataDir: join(opts.dir, name),
      pid() {
        return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
      },
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  await mkdir(opts.dir, { recursive: true });

  const launch = (m: (typeof members)[number], state: 'new' | 'existing'): void => {
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-state=${state}`,
      '--initial-cluster-token=meshctl-test',
      `--heartbeat-interval=${heartbeat}`,
      `--election-timeout=${heartbeat * 10}`,
      '--logger=zap',
      '--log-level=warn',
    ];
    if (opts.tls) {
      args.push(
        `--trusted-ca-file=${opts.tls.caFile}`,
        `--cert-file=${opts.tls.certFile}`,
        `--key-file=${opts.tls.keyFile}`,
        '--client-cert-auth',
      );
    }
    const log = openSync(join(opts.dir, `${m.name}.log`), 'a');
    const child = spawn('etcd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    child.on('error', () => {
      // Reported by waitReady timing out with the log path; nothing else to do here.
    });
    m.child = child;
  };

  const exited = (child: ChildProcess): Promise<void> =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => child.once('exit', () => resolve()));

  const killMember = async (m: (typeof members)[number], signal: NodeJS.Signals): Promise<void> => {
    const child = m.child;
    if (!child || child.pid === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };

  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    async kill(index) {
      const m = members[index];
      if (m) await killMember(m, 'SIGKILL');
    },
    async restart(index) {
      const m = members[index];
      if (!m) return;
      launch(m, 'existing');
      await waitHealthy([m], opts);
    },
    async leader() {
      for (let i = 0; i < members.length; i++) {
        const m = members[i];
        if (!m?.pid()) continue;
        try {
          // etcd 3.4's gRPC gateway: the member's own id is in the header, the leader's beside it.
          const st = (await getJson(`${m.clientUrl}/v3/maintenance/status`, opts.tls, '{}')) as {
            header?: { member_id?: string };
            leader?: string;
          };
          if (st.leader !== undefined && st.header?.member_id === st.leader) return i;
        } catch {
          // That member is down or busy; ask the next.
        }
      }
      throw new Error('no etcd member reports itself leader');
    },
    async stop() {
      // SIGKILL: the data is thrown away, and a graceful stop of all members at once waits
      // seconds on a leader transfer no one can take.
      await Promise.all(members.map((m) => killMember(m, 'SIGKILL')));
      await rm(opts.dir, { recursive: true, force: true });
    },
  };

  for (const m of members) launch(m, 'new');
  try {
    await waitHealthy(members, opts);
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

async function waitHealthy(members: readonly EtcdMember[], opts: EtcdClusterOptions): Promise<void> {
  const deadline = Date.now() + READY_MS;
  for (const m of members) {
    for (;;) {
      try {
        const h = (await getJson(`${m.clientUrl}/health`, opts.tls)) as { health?: string };
        if (h.health === 'true') break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        throw new Error(`etcd member ${m.name} not healthy after ${READY_MS} ms; see ${opts.dir}/${m.name}.log`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** GET, or POST with `body`, of a JSON endpoint of a member. */
async function getJson(url: string, tls: EtcdTls | undefined, body?: string): Promise<unknown> {
  if (!tls) {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(1_000),
      ...(body === undefined ? {} : { method: 'POST', body }),
    });
    return res.json();
  }
  const { request } = await import('node:https');
  const { readFile } = await import('node:fs/promises');
  const [ca, cert, key] = await Promise.all([readFile(tls.caFile), readFile(tls.certFile), readFile(tls.keyFile)]);
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, cert, key, timeout: 1_000, method: body === undefined ? 'GET' : 'POST' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
