import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { assertDistFresh } from '../helpers/dist.js';

await assertDistFresh();

const builtDaemon = fileURLToPath(new URL('../../dist/cli/daemon.js', import.meta.url));

/** A daemon in its own process (signals go to it, not to the test runner), from the built module; its "server" is an interval. */
function spawnDaemon(startMs: number, closeMs: number, stopRequestAfterMs?: number) {
  const script = `
    const { runDaemon } = await import(${JSON.stringify(builtDaemon)});
    await runDaemon({
      start: () => {
        process.stderr.write('starting\\n');
        return new Promise((r) => setTimeout(() => r(setInterval(() => {}, 1000)), ${startMs}));
      },
      announce: () => process.stderr.write('up\\n'),
      close: (server) => new Promise((r) => setTimeout(() => { clearInterval(server); process.stderr.write('closed\\n'); r(); }, ${closeMs})),
      ${stopRequestAfterMs === undefined ? '' : `stopRequested: () => new Promise((r) => setTimeout(r, ${stopRequestAfterMs})),`}
    });
    process.stderr.write('done\\n');
  `;
  return execa(process.execPath, ['--input-type=module', '-e', script], {
    reject: false,
    all: true,
    stdin: 'ignore',
    buffer: true,
    timeout: 20_000,
  });
}

/** Resolves once the child has written `text` (from now on); fails if it exits first. */
function waitForOutput(child: ReturnType<typeof spawnDaemon>, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr?.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes(text)) resolve();
    });
    void child.then((r) =>
      reject(new Error(`the daemon exited (${String(r.exitCode)}) before writing '${text}':\n${r.all ?? ''}`)),
    );
  });
}

describe('runDaemon (foreground daemons: registry start, agent start) (needs the build)', () => {
  it('a SIGTERM during start-up is not fatal: the daemon comes up, then stops cleanly with exit 0', async () => {
    const child = spawnDaemon(800, 10);
    await waitForOutput(child, 'starting');
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      'starting',
      'up',
      'received SIGTERM, stopping',
      'closed',
      'done',
    ]);
  });

  it('a second signal while closing ends the process at once with exit 1', async () => {
    const child = spawnDaemon(10, 5_000);
    await waitForOutput(child, 'up');
    child.kill('SIGINT');
    await waitForOutput(child, 'stopping');
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, r.all).toBe(1);
    expect(r.stderr).toContain('received SIGINT again, exiting now');
    expect(r.stderr).not.toContain('closed');
  });

  it('stops on its own request (agent leave) as it would on SIGTERM, exit 0, without a signal', async () => {
    const r = await spawnDaemon(10, 10, 100);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      'starting',
      'up',
      'received a stop request, stopping',
      'closed',
      'done',
    ]);
  });
});
