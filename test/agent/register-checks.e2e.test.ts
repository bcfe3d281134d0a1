/**
 * What `register` accepts and what it refuses, and what `services` and `status` say about what
 * was accepted (#11.2, #11.4, #11.6): a taken upstream port is refused before anything changes;
 * a sidecar that cannot bind a port later shows in `services`, `status` and their exit codes;
 * `register -f` does not replace a CLI registration unless asked; definition problems and TTL
 * check ids are told plainly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { HOSTS } from '../helpers/hosts.js';
import { registerArgs, startMesh, type MeshAgent, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';
import { stopAllDaemons } from '../helpers/cli.js';

describe('register checks and what services/status say', () => {
  let mesh: TestMesh;
  let a: MeshAgent;
  let squatter: net.Server;
  let takenPort = 0;

  beforeAll(async () => {
    mesh = await startMesh({ agents: [{ name: 'reg-a', address: HOSTS.registerChecks[0] }] });
    a = mesh.agents[0]!;
    squatter = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    takenPort = (squatter.address() as AddressInfo).port;
  }, 60_000);
  afterAll(async () => {
    await new Promise((r) => squatter?.close(r));
    await stopAllDaemons();
    await mesh?.close();
  });

  const ids = async () =>
    (JSON.parse((await a.cli(['services', '--json'])).stdout) as { services: Array<{ id: string; port: number }> })
      .services;

  it('refuses an upstream port another process holds, before anything is registered', async () => {
    const r = await a.cli(
      registerArgs({ name: 't1', port: 9500, address: a.address, upstreams: [`api:${takenPort}`] }),
    );
    expect(r.exitCode).toBe(65);
    expect(r.stderr).toContain(`upstream api: 127.0.0.1:${takenPort} is in use by another process on this host`);
    expect(r.stderr).toContain('MESH_ERR_CONFLICT');
    expect((await ids()).map((s) => s.id)).not.toContain('t1');
  });

  it('shows a sidecar that cannot bind its upstream port in `services` and `status`, and both exit 69', async () => {
    // A definition file is not checked at registration (nobody waits on it): the sidecar finds out.
    await writeFile(
      join(a.servicesDir, 't2.yaml'),
      `service:\n  name: t2\n  port: 9501\n  upstreams: [api:${takenPort}]\n`,
    );
    const res = await eventually(
      async () => {
        const r = await a.cli(['services']);
        if (r.exitCode !== 69) {
          const { readdir } = await import('node:fs/promises');
          const logs = await Promise.all(
            (await readdir(join(a.dataDir, 'proxies')).catch(() => [] as string[]))
              .filter((f) => f.endsWith('.log'))
              .map(async (f) => `${f}: ${(await readFile(join(a.dataDir, 'proxies', f), 'utf8')).slice(-1500)}`),
          );
          throw new Error(
            `services exited ${r.exitCode}:\n${r.stdout}${r.stderr}\n${logs.join('\n')}\n${a.daemon?.output().slice(-3000)}`,
          );
        }
        return r;
      },
      { what: 'the sidecar problem in meshctl services', timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(res.stdout).toMatch(/t2\s+9501\s+tcp\s+sidecar-error/);
    expect(res.stdout).toMatch(new RegExp(`t2: sidecar cannot serve it: .*127\\.0\\.0\\.1:${takenPort}.*EADDRINUSE`));
    const status = await a.cli(['status', '--once']);
    expect(status.exitCode, status.stderr).toBe(69);
    // One line of the frame (80 columns): the rest is in `meshctl services`.
    expect(status.stdout).toMatch(/✗ sidecar of t2 cannot serve it: upstream "api": cannot listen on 127\.0\.0\.1:/);
  });

  it('`register -f` does not replace a CLI registration of the same id unless --replace, and changes nothing when refused', async () => {
    await a.register({ name: 'cli-one', port: 9510, proxy: false });
    const file = join(mesh.dir, 'two.yaml');
    await writeFile(
      file,
      'services:\n  - { name: fresh, port: 9511, proxy: false }\n  - { name: cli-one, port: 9512, proxy: false }\n',
    );
    const refused = await a.cli(['register', '-f', file]);
    expect(refused.exitCode).toBe(65);
    expect(refused.stderr).toContain("service 'cli-one' is already registered on this host (from the CLI, port 9510)");
    expect(refused.stderr).toContain('--replace');
    let now = await ids();
    expect(now.find((s) => s.id === 'cli-one')?.port).toBe(9510);
    expect(now.map((s) => s.id)).not.toContain('fresh');

    const replaced = await a.cli(['register', '-f', file, '--replace']);
    expect(replaced.exitCode, replaced.stderr).toBe(0);
    now = await ids();
    expect(now.find((s) => s.id === 'cli-one')?.port).toBe(9512);
    // The same file again changes nothing, so it is no conflict.
    expect((await a.cli(['register', '-f', file])).exitCode).toBe(0);
  });

  it('names the TTL checks a registration made, with how to report them', async () => {
    const r = await a.register({ name: 'batch', port: 9520, proxy: false, extra: ['--check', 'ttl:30s'] });
    expect(r.stdout).toContain("Registered service 'batch'.");
    expect(r.stdout).toContain("TTL check 'batch-ttl': critical until reported with `meshctl check pass batch-ttl`");
    expect((await a.cli(['check', 'pass', 'batch-ttl'])).exitCode).toBe(0);
  });

  it('tells a broken new definition file (nothing registered) from a broken edit (last good version kept)', async () => {
    const file = join(a.servicesDir, 'd.yaml');
    await writeFile(file, 'service:\n  name: d1\n  prt: 1\n  checks:\n    - ttl: 30s\n    - ttl: 10s\n');
    const fresh = await eventually(
      async () => {
        const r = await a.cli(['services']);
        if (!r.stdout.includes('d.yaml')) throw new Error(r.stdout);
        return r.stdout;
      },
      { what: 'the broken new file reported', timeoutMs: 20_000, intervalMs: 300 },
    );
    const lines = fresh.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`invalid definition ${file}:3:3: service.prt: unknown key 'prt'`));
    expect(at, fresh).toBeGreaterThan(-1);
    expect(lines[at]).not.toMatch(/\(.*\).*\(.*\)/);
    expect(lines[at]).not.toMatch(/:$/);
    expect(lines[at + 1]).toBe('  nothing from this file is registered');
    expect(fresh).not.toContain('last good version stays');

    await writeFile(file, 'service:\n  name: d1\n  port: 9530\n');
    await eventually(async () => (await ids()).some((s) => s.id === 'd1'), { what: 'd1 registered from the file' });
    await writeFile(file, 'service:\n  name: d1\n  port: [\n');
    const edited = await eventually(
      async () => {
        const r = await a.cli(['services']);
        if (!r.stdout.includes('invalid definition')) throw new Error(r.stdout);
        return r.stdout;
      },
      { what: 'the broken edit reported' },
    );
    expect(edited).toContain('  still registered from its last good version: d1');
    expect(JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8'))).toBeDefined();
  });
});
