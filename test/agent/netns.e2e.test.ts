import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe.skipIf(!canRun)('hosts in network namespaces (root): discovery and failover when a host is cut off', () => {
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

  it('reaches both api hosts across the bridge, over mTLS', async () => {
    const res = await eventually(
      async () => {
        const p = await probe(net.hosts[W]!, 10);
        return p.statuses['200'] === 10 && p.apps['api-host-a'] && p.apps['api-host-b'] ? p : undefined;
      },
      { what: 'both api hosts answer', timeoutMs: 60_000 },
    );
    expect(res.statuses['200']).toBe(10);
  });

  it('routes around a host that is cut off (link down), and takes it back when it returns', async () => {
    await net.cutOff(net.hosts[A]!);
    // Its lease runs out and web's sidecar drops the endpoint: then every request succeeds on B.
    await eventually(
      async () => {
        const p = await probe(net.hosts[W]!, 6);
        return p.statuses['200'] === 6 && p.apps['api-host-b'] === 6;
      },
      { what: 'traffic only to host-b', timeoutMs: 60_000 },
    );
    await net.reconnect(net.hosts[A]!);
    await eventually(
      async () => {
        const p = await probe(net.hosts[W]!, 10);
        return p.apps['api-host-a'] && p.apps['api-host-b'];
      },
      { what: 'host-a back', timeoutMs: 60_000 },
    );
  });

  it('leaves no namespace, link or process behind', async () => {
    const id = net.id;
    await stopAllDaemons();
    await net.destroy();
    expect(await leftovers(id)).toEqual([]);
  });
});
