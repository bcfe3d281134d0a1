/**
 * Faults of the network, on hosts in their own network namespaces (root): packet loss on an
 * api host (iptables `statistic`), and a host cut off (link down) and back. Same set-up as
 * test/agent/netns.e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { recordAndCheck, recordFault } from './record.js';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetwork, leftovers, netnsAvailable, type NetHost, type TestNetwork } from '../helpers/netns.js';
import { CLI, runCli, startCli, stopAllDaemons } from '../helpers/cli.js';
import { eventually } from '../helpers/registry.js';

const APP = fileURLToPath(new URL('../helpers/app-server.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('../helpers/http-probe.mjs', import.meta.url));
const canRun = await netnsAvailable();
if (!canRun)
  for (const scenario of ['packet loss (iptables statistic in a netns)', 'host cut off (netns, link down)'])
    recordFault({
      scenario,
      load: '—',
      fault: '—',
      sent: 0,
      failed: 0,
      lostWrites: '—',
      expected: '—',
      result: 'PENDING: needs root and network namespaces',
    });

describe.skipIf(!canRun)('network faults in namespaces', () => {
  let net: TestNetwork;
  let dir: string;
  let env: Record<string, string>;
  let admin: (args: string[]) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
  const [A, B, W] = [0, 1, 2];

  const probe = async (host: NetHost, count: number) => {
    const r = await net.exec(host, process.execPath, [PROBE, '18000', String(count)], { buffer: true });
    return JSON.parse(
      String(r.all ?? '')
        .trim()
        .split('\n')
        .pop() ?? '{}',
    ) as { statuses: Record<string, number>; apps: Record<string, number> };
  };

  beforeAll(async () => {
    net = await createNetwork(['host-a', 'host-b', 'host-w']);
    dir = await mkdtemp(join(tmpdir(), 'meshctl-netns-'));
    env = { MESHCTL_CONFIG_DIR: join(dir, 'cli') };
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
        '--lease-ttl',
        '5s',
        '--json',
        '--no-save',
      ],
      env,
    );
    expect(init.exitCode, init.stderr).toBe(0);
    const made = JSON.parse(init.stdout) as {
      joinToken: string;
      caFingerprint: string;
      adminToken: string;
      caCertPath: string;
    };
    const reg = startCli(['registry', 'start', '--data-dir', join(dir, 'reg')], env);
    const url = (await reg.waitFor(/listening on (https:\/\/[\d.]+:\d+)/))[1]!;
    admin = (args) =>
      runCli([...args, '--registry', url, '--token', made.adminToken, '--ca-file', made.caCertPath], env);

    for (const [i, host] of net.hosts.entries()) {
      const data = join(dir, host.name);
      await mkdir(data, { recursive: true });
      // Each host gets a single-use join token scoped to the one service it serves.
      const made_ = await admin(['token', 'create', '--service', i === W ? 'web' : 'api', '--uses', '1', '--json']);
      expect(made_.exitCode, made_.stderr).toBe(0);
      const joinToken = (JSON.parse(made_.stdout) as { token: string }).token;
      const j = await runCli(
        [
          'init',
          '--join',
          url,
          '--token',
          joinToken,
          '--ca-fingerprint',
          made.caFingerprint,
          '--node-name',
          host.name,
          '--advertise',
          host.address,
          '--data-dir',
          data,
          '--socket',
          join(data, 'agent.sock'),
          '--services-dir',
          join(data, 'services.d'),
        ],
        env,
      );
      expect(j.exitCode, j.stderr).toBe(0);
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
    for (const i of [A, B]) {
      const h = net.hosts[i]!;
      const r = await runCli(
        [
          'register',
          'service',
          'api',
          '--port',
          '9000',
          '--address',
          h.address,
          '--protocol',
          'http',
          '--check',
          `http://${h.address}:9000/`,
          '--interval',
          '500ms',
          '--data-dir',
          join(dir, h.name),
        ],
        env,
      );
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const w = net.hosts[W]!;
    const r = await runCli(
      [
        'register',
        'service',
        'web',
        '--port',
        '9100',
        '--address',
        w.address,
        '--protocol',
        'http',
        '--upstream',
        'api:18000',
        '--data-dir',
        join(dir, w.name),
      ],
      env,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await admin(['intention', 'allow', 'web', 'api'])).exitCode).toBe(0);
  }, 180_000);

  afterAll(async () => {
    try {
      await stopAllDaemons();
    } finally {
      await net?.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });

  const count = (p: { statuses: Record<string, number> }) =>
    Object.entries(p.statuses).reduce((a, [s, n]) => (s === '200' ? a : a + n), 0);

  it('packet loss: 10 % of packets to an api host dropped; requests still succeed', async () => {
    await eventually(
      async () => {
        const p = await probe(net.hosts[W]!, 10);
        return p.statuses['200'] === 10 && p.apps['api-host-a'] && p.apps['api-host-b'];
      },
      { what: 'both api hosts answer', timeoutMs: 60_000 },
    );
    const ns = net.hosts[A]!.ns;
    const rule = ['INPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.1', '-j', 'DROP'];
    await execa('ip', ['netns', 'exec', ns, 'iptables', '-A', ...rule]);
    let p;
    try {
      p = await probe(net.hosts[W]!, 200);
    } finally {
      await execa('ip', ['netns', 'exec', ns, 'iptables', '-D', ...rule]);
    }
    const failed = count(p);
    recordAndCheck(
      {
        scenario: 'packet loss (iptables statistic in a netns)',
        load: '200 GET one after another (5 s timeout each)',
        fault: `10 % of packets into api host-a dropped; answers: ${JSON.stringify(p.statuses)}, by app ${JSON.stringify(p.apps)}`,
        sent: 200,
        failed,
        lostWrites: '—',
        expected: 'requests succeed within their timeouts: 0 failed',
      },
      failed === 0,
      JSON.stringify(p.statuses),
    );
  });

  it('host cut off: its lease expires, callers fail over; back online it re-registers without duplicates', async () => {
    await net.cutOff(net.hosts[A]!);
    let during = { statuses: {} as Record<string, number>, apps: {} as Record<string, number> };
    let sent = 0;
    let failed = 0;
    try {
      // Until the lease runs out and web's sidecar drops host-a, calls may meet it; count every one.
      await eventually(
        async () => {
          const p = await probe(net.hosts[W]!, 6);
          sent += 6;
          failed += count(p);
          during = p;
          return p.statuses['200'] === 6 && p.apps['api-host-b'] === 6;
        },
        { what: 'traffic only to host-b', timeoutMs: 60_000 },
      );
    } finally {
      await net.reconnect(net.hosts[A]!);
    }
    await eventually(
      async () => {
        const p = await probe(net.hosts[W]!, 10);
        return p.apps['api-host-a'] && p.apps['api-host-b'];
      },
      { what: 'host-a back', timeoutMs: 60_000 },
    );
    const inst = JSON.parse((await admin(['catalog', 'instances', 'api', '--json'])).stdout) as {
      instances: Array<{ node: string; id: string }>;
    };
    const keys = inst.instances.map((i) => `${i.id}@${i.node}`);
    const dupes = keys.length - new Set(keys).size;
    recordAndCheck(
      {
        scenario: 'host cut off (netns, link down)',
        load: 'GETs in rounds of 6 until only host-b answers',
        fault: `link of api host-a down until its lease expired, then up; last round ${JSON.stringify(during.apps)}; instances after: ${keys.join(', ')}`,
        sent,
        failed,
        lostWrites: '—',
        expected:
          'callers move to host-b by the lease expiry (requests caught on host-a before that are counted); back online: 2 instances, no duplicate',
      },
      dupes === 0 && keys.length === 2,
      `failed ${failed}, duplicates ${dupes}`,
    );
  });

  it('leaves no namespace, link or process behind', async () => {
    const id = net.id;
    await stopAllDaemons();
    await net.destroy();
    expect(await leftovers(id)).toEqual([]);
  });
});
