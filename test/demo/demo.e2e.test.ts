import { afterAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { CLI, runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/registry.js';

/** PIDs of processes whose command line mentions a meshctl demo directory. */
async function demoProcesses(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('meshctl-demo-')) out.push(pid);
  }
  return out;
}

describe('meshctl demo', () => {
  const session = `mdemo-${process.pid}`;
  afterAll(async () => {
    await execa('tmux', ['kill-session', '-t', session], { reject: false });
  });

  it('--headless runs the whole mesh, prints a truthful summary, exits 0 and leaves nothing behind', async () => {
    const r = await runCli(['demo', '--headless', '--duration', '6s', '--json'], {}, { timeoutMs: 150_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { worked: boolean; successRate: number; web: { requests: number; ok: number; p99Ms: number }; apiInstances: Record<string, number> };
    expect(s.worked).toBe(true);
    expect(s.web.requests).toBeGreaterThan(10);
    expect(s.web.ok).toBe(s.web.requests);
    expect(Object.keys(s.apiInstances).sort()).toEqual(['api-1', 'api-2']);
    expect(s.web.p99Ms).toBeGreaterThan(0);
    expect(r.stderr).toContain('✓ starting the registry');
    expect(r.stderr).toContain('every process the demo started has stopped');
    expect(await demoProcesses()).toEqual([]);
  }, 180_000);

  it('shows live numbers in the dashboard; stopping one api app turns it critical while traffic flows to the other; q tears down', async () => {
    await execa('tmux', ['new-session', '-d', '-s', session, '-x', '80', '-y', '24', `${process.execPath} ${CLI} demo; echo DEMO-EXIT=$?; sleep 60`]);
    const screen = async () => (await execa('tmux', ['capture-pane', '-p', '-t', session])).stdout;
    const apiRow = (text: string) => text.split('\n').find((l) => /^\W*api\s/.test(l));
    await eventually(async () => {
      const row = apiRow(await screen());
      return row && /2\/2\s+[1-9]/.test(row) && /100%/.test(row);
    }, { what: 'api 2/2 with traffic on the dashboard', timeoutMs: 120_000, intervalMs: 500 });

    await execa('tmux', ['send-keys', '-t', session, '1']);
    await eventually(async () => /1\/2/.test(apiRow(await screen()) ?? ''), { what: 'api 1/2 after stopping api-1', timeoutMs: 30_000, intervalMs: 300 });
    // Traffic keeps flowing to the other instance.
    await eventually(async () => /1\/2\s+[1-9]/.test(apiRow(await screen()) ?? ''), { what: 'traffic on the remaining instance', timeoutMs: 30_000, intervalMs: 300 });
    await execa('tmux', ['send-keys', '-t', session, '1']);
    await eventually(async () => /2\/2/.test(apiRow(await screen()) ?? ''), { what: 'api back to 2/2', timeoutMs: 30_000, intervalMs: 300 });

    await execa('tmux', ['send-keys', '-t', session, 'q']);
    await eventually(async () => /DEMO-EXIT=0/.test(await screen()), { what: 'demo exit 0', timeoutMs: 60_000, intervalMs: 300 });
    expect(await demoProcesses()).toEqual([]);
  }, 300_000);
});
