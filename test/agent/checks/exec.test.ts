import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeToCheckStatus, OUTPUT_LIMIT, runExecCheck } from '../../../src/agent/checks/index.js';
import { checkDef, processRunning, waitFor } from './helpers.js';

const check = (target: string, timeoutMs = 5_000) => checkDef({ kind: 'exec', target, timeoutMs });

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-exec-check-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('exec check', () => {
  it('maps exit codes: 0 passing, 1 warning, other critical', () => {
    expect(exitCodeToCheckStatus(0)).toBe('passing');
    expect(exitCodeToCheckStatus(1)).toBe('warning');
    expect(exitCodeToCheckStatus(2)).toBe('critical');
    expect(exitCodeToCheckStatus(127)).toBe('critical');
  });

  it('is passing on exit 0, with stdout and stderr as output', async () => {
    const r = await runExecCheck(check('echo out; echo err >&2'));
    expect(r.status).toBe('passing');
    expect(r.output).toContain('out\n');
    expect(r.output).toContain('err\n');
  });

  it('is warning on exit 1 and critical on exit 2, through the shell', async () => {
    const warn = await runExecCheck(check('echo degraded; exit 1'));
    expect(warn).toEqual({ status: 'warning', output: 'degraded\n' });
    const crit = await runExecCheck(check('test 1 -eq 2 || exit 2'));
    expect(crit).toEqual({ status: 'critical', output: 'exit code 2' });
  });

  it('is critical when the command does not exist', async () => {
    const r = await runExecCheck(check('meshctl-no-such-command-xyz --flag'));
    expect(r.status).toBe('critical');
    expect(r.output).toMatch(/meshctl-no-such-command-xyz.*not found/);
  });

  it('kills the whole process group on timeout', async () => {
    // The shell forks sleep and waits: killing only the shell would leave sleep behind.
    const pidFile = join(dir, 'timeout.pid');
    const r = await runExecCheck(check(`sleep 100 & echo $! > ${pidFile}; wait`, 1_500));
    expect(r).toEqual({ status: 'critical', output: 'timed out after 1500ms; killed the command and its children' });
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    await waitFor(() => !processRunning(pid), `sleep (pid ${pid}) to be gone`);
  });

  it('kills the process group when cancelled', async () => {
    const pidFile = join(dir, 'cancel.pid');
    const ac = new AbortController();
    const pending = runExecCheck(
      check(`echo started; sleep 100 & echo $! > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; wait`, 60_000),
      ac.signal,
    );
    await waitFor(() => existsSync(pidFile), 'the command to start its child');
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(processRunning(pid)).toBe(true);
    ac.abort();
    expect(await pending).toEqual({ status: 'critical', output: 'check cancelled\nstarted\n' });
    await waitFor(() => !processRunning(pid), `sleep (pid ${pid}) to be gone`);
  });

  it('truncates long output to 4 KiB and still reads the exit code', async () => {
    const r = await runExecCheck(check("head -c 200000 /dev/zero | tr '\\0' x; exit 1"));
    expect(r.status).toBe('warning');
    expect(Buffer.byteLength(r.output)).toBeLessThanOrEqual(OUTPUT_LIMIT);
    expect(r.output.startsWith('xxxx')).toBe(true);
    expect(r.output).toMatch(/truncated\)$/);
  });

  it('cuts multi-byte output on a character boundary', async () => {
    // 3000 two-byte characters: 6000 bytes, cut somewhere inside.
    const r = await runExecCheck(check(`printf 'é%.0s' $(seq 1 3000)`));
    expect(r.status).toBe('passing');
    expect(r.output).not.toContain('\uFFFD');
    expect(Buffer.byteLength(r.output)).toBeLessThanOrEqual(OUTPUT_LIMIT);
  });

  it('is critical for an empty command', async () => {
    expect(await runExecCheck(check('   '))).toEqual({ status: 'critical', output: 'exec check has no command' });
  });
});
