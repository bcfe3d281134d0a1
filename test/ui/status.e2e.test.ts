/**
 * `meshctl status` as a user runs it: the compiled CLI in a real terminal (tmux, 80×24) against
 * a real registry, read off the screen; and the one-shot and JSON forms through a pipe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { eventually, startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';
import { sh, startTerminal, type Terminal } from '../helpers/tmux.js';
import { ensureBuilt, statusEntry } from './built.js';

let entry: string[];
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  await ensureBuilt();
  entry = await statusEntry();
  dir = await mkdtemp(join(tmpdir(), 'meshctl-status-'));
  // Only what the CLI needs: no saved settings, no default agent socket.
  env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    LANG: 'C.UTF-8',
    MESHCTL_CONFIG_DIR: join(dir, 'config'),
    MESHCTL_DATA_DIR: join(dir, 'data'),
  };
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function status(args: string[], extraEnv: Record<string, string> = {}) {
  const r = await execa(process.execPath, [...entry, ...args], {
    env: { ...env, ...extraEnv },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 30_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('meshctl status against a real registry', () => {
  let t: TestRegistry;
  let flags: string[];

  beforeAll(async () => {
    // sqlite: the terminal test stops and restarts the registry, and the catalog must survive it.
    t = await startTestRegistry({ store: 'sqlite' });
    flags = ['--registry', t.url, '--token', t.init.adminToken, '--ca-file', t.init.caCertPath];
    const a = (await t.joinNode('host-a', '127.0.0.2')).client;
    const b = (await t.joinNode('host-b', '127.0.0.3')).client;
    await a.heartbeat('host-a', 60);
    await b.heartbeat('host-b', 60);
    await a.register({ name: 'api', port: 9000, protocol: 'http' });
    await b.register({
      name: 'api',
      port: 9000,
      protocol: 'http',
      checks: [{ id: 'api-ttl', kind: 'ttl', ttlMs: 60_000 }],
    });
    await b.updateCheck('host-b', 'api', 'api-ttl', 'critical', 'app stopped');
    await a.register({ name: 'web', port: 8080, protocol: 'http', upstreams: [{ service: 'api', localPort: 18000 }] });
    await t.admin.putIntention('web', 'api', 'allow');
  });
  afterAll(async () => {
    await t.close();
  });

  describe('in a real terminal (tmux, 80×24)', () => {
    let term: Terminal | undefined;
    afterAll(async () => {
      await term?.close();
    });

    it('shows the mesh, follows the keys, turns red while the registry is away, redraws on resize and quits on q', async () => {
      const exitFile = join(dir, 'exit-code');
      const tty = await startTerminal({
        name: 'status',
        command: [process.execPath, ...entry, ...flags, '--interval', '300ms'],
        // CI=true on purpose: Ink alone would then draw only the last frame; the dashboard must still be live.
        env: { ...env, TERM: 'xterm-256color', CI: 'true' },
        columns: 80,
        rows: 24,
        after: `echo $? > ${sh(exitFile)}`,
      });
      term = tty;
      const waitScreen = (pred: (s: string) => boolean, what: string) => tty.waitScreen(pred, what);

      const first = await waitScreen((s) => s.includes('SERVICES (2)') && s.includes('● reachable'), 'the dashboard');
      // The frame sits at the top of the screen with the key line on row 23: nothing shifted or left over.
      const rows = first.split('\n');
      expect(rows[0]).toMatch(
        new RegExp(
          `^meshctl  ${t.init.trustDomain.replace(/\./g, '\\.')}  registry ● reachable  rev \\d+  store sqlite`,
        ),
      );
      expect(rows[22]).toContain('q quit');
      expect(first).toMatch(/›\s+api\s+1\/2/);
      expect(first).toMatch(/web\s+1\/1/);
      expect(first).toMatch(/host-a\s+alive/);
      expect(first).toMatch(/web → api\s+allow/);
      expect(first).toContain('q quit');
      expect(first.split('\n').every((l) => [...l].length <= 80)).toBe(true);

      await tty.keys('Enter');
      const detail = await waitScreen((s) => s.includes('INSTANCES (2)'), "api's detail");
      expect(detail).toMatch(/api@host-b\s+127\.0\.0\.3:9000\s+critical/);
      expect(detail).toContain('↳ api-ttl: app stopped');
      await tty.keys('Escape');
      await waitScreen((s) => s.includes('SERVICES (2)'), 'the overview again');
      await tty.keys('Down');
      await waitScreen((s) => /›\s+web/.test(s), 'web selected');

      await t.registry.close();
      const away = await waitScreen((s) => s.includes('✗ unreachable'), 'the registry marked unreachable');
      // Line 2 says why (refused, or reset when the close caught a read in flight).
      expect(away.split('\n')[1]).toMatch(/cannot reach|broke|failed|timed out/);
      expect(away).toMatch(/web\s+1\/1/);
      await t.restart();
      await waitScreen(
        (s) => (s.split('\n')[0] ?? '').includes('● reachable'),
        'the registry reachable again, on the top line',
      );

      await tty.resize(100, 30);
      const wide = await waitScreen(
        (s) => s.split('\n').some((l) => [...l].length > 80),
        'a frame drawn for 100 columns',
      );
      expect(wide.split('\n')[0]).toMatch(/^meshctl {2}/);
      expect(wide.split('\n')[28]).toContain('q quit');

      await tty.keys('q');
      await eventually(async () => !(await tty.running()), {
        timeoutMs: 10_000,
        what: 'the session to end after q',
      });
      expect((await readFile(exitFile, 'utf8')).trim()).toBe('0');
    });
  });

  it('prints one plain frame with --once, and without it when stdout is not a terminal', async () => {
    for (const args of [[...flags, '--once'], flags]) {
      const r = await status(args);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).not.toMatch(/\u001B/);
      expect(r.stdout).toContain('SERVICES (2)');
      expect(r.stdout).toMatch(/api\s+1\/2/);
      expect(r.stdout).toMatch(/host-b\s+alive/);
      expect(r.stdout).toContain('INTENTIONS (default deny)');
      expect(r.stdout).not.toContain('q quit');
    }
  });

  it('prints the gathered data with --json', async () => {
    const r = await status([...flags, '--json']);
    expect(r.exitCode).toBe(0);
    const data = JSON.parse(r.stdout) as {
      registry: { trustDomain: string };
      services: Array<{ name: string }>;
      nodes: Array<{ name: string }>;
      intentions: unknown[];
      metrics: unknown;
      metricsProblem: string | null;
    };
    expect(data.registry.trustDomain).toBe(t.init.trustDomain);
    expect(data.services.map((s) => s.name)).toEqual(['api', 'web']);
    expect(data.nodes.map((n) => n.name)).toEqual(['host-a', 'host-b']);
    expect(data.intentions).toHaveLength(1);
    expect(data.metrics === null ? data.metricsProblem : 'served').toMatch(/^(not available|served)$/);
  });

  it('fails clearly on bad input and on a registry that is not there', async () => {
    const bad = await status([...flags, '--interval', '5']);
    expect(bad.exitCode).toBe(64);
    expect(bad.stderr).toContain("'5' is not a duration, e.g. 1s or 500ms");
    const nowhere = await status([
      '--registry',
      'https://127.0.0.1:1',
      '--token',
      'x',
      '--ca-file',
      t.init.caCertPath,
      '--once',
    ]);
    expect(nowhere.exitCode).toBe(69);
    expect(nowhere.stderr).toContain('cannot reach 127.0.0.1:1');
    expect(nowhere.stderr).not.toMatch(/\n\s+at /);
    const unconfigured = await status(['--once']);
    expect(unconfigured.exitCode).toBe(78);
    expect(unconfigured.stderr).toContain('no registry configured');
  });
});

describe("meshctl status through this host's agent", () => {
  let mesh: TestMesh;
  beforeAll(async () => {
    mesh = await startMesh({ agents: [{ name: 'host-a', address: '127.0.0.2' }] });
    await mesh.agents[0]!.register({ name: 'cache', port: 6379, proxy: false });
  }, 120_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it('reads the registry through the agent socket, with no token, and shows the node certificate', async () => {
    const socket = mesh.agents[0]!.socket;
    const json = await eventually(
      async () => {
        const r = await status(['--socket', socket, '--json']);
        if (r.exitCode !== 0) throw new Error(r.stderr);
        const d = JSON.parse(r.stdout) as {
          source: string;
          services: Array<{ name: string }>;
          agent: { node: string; registryReachable: boolean; nodeCertNotAfter?: string } | null;
        };
        return d.services.some((s) => s.name === 'cache') ? d : undefined;
      },
      { what: 'the cache service through the agent' },
    );
    expect(json.source).toBe(`agent ${socket}`);
    expect(json.agent).toMatchObject({ node: 'host-a' });
    expect(Date.parse(json.agent!.nodeCertNotAfter!)).toBeGreaterThan(Date.now());

    const once = await status(['--socket', socket, '--once']);
    expect(once.exitCode).toBe(0);
    expect(once.stdout).toMatch(/node host-a cert in \d+[dhm]/);
    expect(once.stdout).toMatch(/cache\s+1\/1/);
  });
});
