/**
 * Runs the real compiled CLI (`dist/cli/main.js`, built by `npm test`) as a user would. A test
 * file that imports this fails at once when dist/ is older than src/ (helpers/dist.ts).
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertDistFresh } from './dist.js';

await assertDistFresh();

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  const r = await execa(process.execPath, [CLI, ...args], {
    env: { ...env, MESHCTL_LOG_LEVEL: env.MESHCTL_LOG_LEVEL ?? 'warn' },
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A long-running CLI process (registry, agent) that the test owns and must stop. */
export interface CliDaemon {
  proc: ResultPromise;
  pid: number;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const daemons = new Set<CliDaemon>();

export function startCli(args: string[], env: Record<string, string> = {}): CliDaemon {
  const proc = execa(process.execPath, [CLI, ...args], {
    env: { MESHCTL_LOG_LEVEL: 'info', ...env },
    reject: false,
    stdin: 'ignore',
    all: true,
    buffer: false,
  });
  let out = '';
  const listeners = new Set<() => void>();
  proc.all?.on('data', (c: Buffer) => {
    out += c.toString();
    for (const l of listeners) l();
  });
  const d: CliDaemon = {
    proc,
    pid: proc.pid!,
    output: () => out,
    waitFor(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re} in output:\n${out}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`process exited while waiting for ${re}; output:\n${out}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          proc.off('exit', onExit);
        };
        listeners.add(check);
        proc.once('exit', onExit);
        check();
      });
    },
    async kill(signal = 'SIGTERM') {
      daemons.delete(d);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        await proc;
      }
    },
  };
  daemons.add(d);
  return d;
}

/** Stops every daemon a test started and did not stop itself (call from afterEach/afterAll). */
export async function stopAllDaemons(): Promise<void> {
  await Promise.all([...daemons].map((d) => d.kill('SIGKILL')));
}

/** A registry made by `init --server` and run by `registry start`, as its admin's CLI sees it. */
export interface CliRegistry {
  dir: string;
  /** MESHCTL_CONFIG_DIR (where init saved the admin's settings) and MESHCTL_REGISTRY. */
  env: Record<string, string>;
  /** What `init --server` printed. */
  init: CliResult;
  url: string;
}

/**
 * `init --server` in a new temporary directory (`prefix`), on 127.0.0.1, then `registry start`.
 * The test stops it with stopAllDaemons() and removes `dir`.
 */
export async function startCliRegistry(prefix: string): Promise<CliRegistry> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const env: Record<string, string> = { MESHCTL_CONFIG_DIR: join(dir, 'config') };
  const data = join(dir, 'reg');
  const init = await runCli(
    ['init', '--server', '--data-dir', data, '--bind', '127.0.0.1:0', '--advertise', '127.0.0.1'],
    env,
  );
  if (init.exitCode !== 0) throw new Error(`init --server failed (exit ${init.exitCode}): ${init.stderr}`);
  const reg = startCli(['registry', 'start', '--data-dir', data], env);
  const url = (await reg.waitFor(/listening on (https:\/\/127\.0\.0\.1:\d+)/))[1]!;
  env.MESHCTL_REGISTRY = url;
  return { dir, env, init, url };
}
