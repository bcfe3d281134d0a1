import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { execa } from 'execa';
import { CLI, runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/registry.js';

/** PIDs of `meshctl demo` itself and of every process whose command line mentions a demo directory. */
async function demoProcesses(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('meshctl-demo-') || cmd.includes(`${CLI}\0demo`)) out.push(pid);
  }
  return out;
}

describe('meshctl demo', () => {
  // A tmux server of the test's own, so no other test's (or user's) tmux session is touched.
  const server = `mdemo-${process.pid}`;
  const session = 'demo';
  const tmux = (args: string[]) => execa('tmux', ['-L', server, ...args], { env: { TMUX: '' } });
  // Every run's state and logs go under one directory of the test's, removed at the end.
  let root = '';
  const dataDir = (name: string) => join(root, name);
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'meshctl-demo-tests-'));
  });
  afterAll(async () => {
    await tmux(['kill-server']).catch(() => undefined);
    // After a failed test: whatever the demos started here and left, so the next run starts clean.
    for (const pid of await demoProcesses()) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('--headless runs the whole mesh, prints a truthful summary, exits 0 and leaves nothing behind', async () => {
    // Something else answers on the port the demo prefers for web's upstream: the demo must pick
    // another and still go through its own sidecars (the summary names both api instances).
    const squatter = http.createServer((_req, res) => res.end('not the mesh'));
    await new Promise<void>((resolve, reject) => squatter.once('error', reject).listen(18000, '127.0.100.4', resolve));
    const r = await runCli(
      ['demo', '--headless', '--duration', '6s', '--json', '--data-dir', dataDir('headless')],
      {},
      { timeoutMs: 150_000 },
    ).finally(() => squatter.close());
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      worked: boolean;
      successRate: number;
      web: { requests: number; ok: number; p99Ms: number };
      apiInstances: Record<string, number>;
    };
    expect(s.worked).toBe(true);
    expect(s.web.requests).toBeGreaterThan(10);
    expect(s.web.ok).toBe(s.web.requests);
    expect(Object.keys(s.apiInstances).sort()).toEqual(['api-1', 'api-2']);
    expect(s.web.p99Ms).toBeGreaterThan(0);
    expect(r.stderr).toContain('✓ starting the registry');
    expect(r.stderr).toMatch(/upstream api at 127\.0\.100\.4:(?!18000)\d+/);
    expect(r.stderr).toContain('every process the demo started has stopped');
    expect(await demoProcesses()).toEqual([]);
  }, 180_000);

  it('without a terminal runs headless for --duration, says so, and prints the summary', async () => {
    const r = await runCli(
      ['demo', '--duration', '2s', '--data-dir', dataDir('no-terminal')],
      {},
      { timeoutMs: 150_000 },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('no terminal for the dashboard: running headless for 2s');
    expect(r.stdout).toContain('The mesh worked');
    expect(await demoProcesses()).toEqual([]);
  }, 180_000);

  it('shows live numbers in the dashboard; stopping one api app turns it critical while traffic flows to the other; q tears down', async () => {
    // CI=true on purpose: Ink would draw nothing but the last frame, and the dashboard must not care.
    const exitFile = join(root, 'dashboard-exit-code');
    await tmux([
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '80',
      '-y',
      '24',
      `CI=true ${process.execPath} ${CLI} demo --data-dir ${dataDir('dashboard')}; echo $? > ${exitFile}`,
    ]);
    const screen = async () => (await tmux(['capture-pane', '-p', '-t', session])).stdout;
    const apiRow = (text: string) => text.split('\n').find((l) => /^\W*api\s/.test(l)) ?? '';
    // Waits until the api row matches; a timeout shows the last screen, to see what was wrong.
    const untilApiRow = (re: RegExp, what: string, timeoutMs = 30_000) =>
      eventually(
        async () => {
          const text = await screen();
          if (re.test(apiRow(text))) return true;
          throw new Error(`the screen was:\n${text}`);
        },
        { what, timeoutMs, intervalMs: 300 },
      );

    await untilApiRow(/2\/2\s+[1-9].*100%/, 'api 2/2 with traffic on the dashboard', 120_000);
    await tmux(['send-keys', '-t', session, '1']);
    await untilApiRow(/1\/2/, 'api 1/2 after stopping api-1');
    // Traffic keeps flowing to the other instance.
    await untilApiRow(/1\/2\s+[1-9]/, 'traffic on the remaining instance');
    await tmux(['send-keys', '-t', session, '1']);
    await untilApiRow(/2\/2/, 'api back to 2/2');
    // Both apps down: callers (web's sidecar) get the mesh's answers, and the row says so.
    await tmux(['send-keys', '-t', session, '1']);
    await tmux(['send-keys', '-t', session, '2']);
    await untilApiRow(/0\/2\s+\S+\s+(?!100%)\d+\.\d%\s+[1-9]\d*\s/, "api 0/2 with callers' failures and mesh errors");
    // The help lists the demo's own keys.
    await tmux(['send-keys', '-t', session, '?']);
    await eventually(
      async () => {
        const text = await screen();
        if (text.includes("demo: stop / start api-1's app")) return true;
        throw new Error(`the screen was:\n${text}`);
      },
      { what: "the demo's keys in the help", timeoutMs: 10_000, intervalMs: 300 },
    );
    await tmux(['send-keys', '-t', session, '?']);

    await tmux(['send-keys', '-t', session, 'q']);
    const exitCode = await eventually(async () => (await readFile(exitFile, 'utf8').catch(() => '')).trim(), {
      what: 'the demo to exit',
      timeoutMs: 60_000,
      intervalMs: 300,
    });
    expect(exitCode).toBe('0');
    expect(await demoProcesses()).toEqual([]);
  }, 300_000);

  it('closing the terminal while the demo starts still tears everything down, sidecars included', async () => {
    const hup = (args: string[]) =>
      execa('tmux', ['-L', `${server}-hup`, ...args], { env: { TMUX: '' }, reject: false });
    try {
      await hup([
        'new-session',
        '-d',
        '-s',
        session,
        '-x',
        '80',
        '-y',
        '24',
        `${process.execPath} ${CLI} demo --data-dir ${dataDir('hang-up')}`,
      ]);
      // Once the sidecars run (they are detached from their agents by design, so they are what would leak).
      await eventually(
        async () =>
          /waiting for the sidecars|SERVICES/.test(String((await hup(['capture-pane', '-p', '-t', session])).stdout)),
        {
          what: 'the demo to be waiting for its sidecars',
          timeoutMs: 60_000,
          intervalMs: 100,
        },
      );
    } finally {
      // Closing the terminal: every process in it gets SIGHUP.
      await hup(['kill-server']);
    }
    await eventually(async () => (await demoProcesses()).length === 0, {
      what: 'every demo process to end',
      timeoutMs: 60_000,
      intervalMs: 300,
    });
  }, 180_000);
});
