/**
 * Exec check: runs the target command line through /bin/sh (like Consul's script checks).
 * Exit 0 is passing, 1 warning, anything else critical. The command runs in its own
 * process group so that, on timeout or cancellation, the whole group is killed: killing
 * only the shell would leave its children running (and holding the output pipe open).
 */
import { execa, type ResultPromise } from 'execa';
import type { CheckDefinition, CheckResult, CheckStatus } from './types.js';
import { OutputCollector, OUTPUT_LIMIT, truncateOutput } from './output.js';

export function exitCodeToCheckStatus(code: number): CheckStatus {
  if (code === 0) return 'passing';
  if (code === 1) return 'warning';
  return 'critical';
}

export async function runExecCheck(def: CheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const command = def.target.trim();
  if (command === '') return { status: 'critical', output: 'exec check has no command' };
  if (signal?.aborted) return { status: 'critical', output: 'check cancelled' };

  const output = new OutputCollector(OUTPUT_LIMIT);
  let subprocess: ResultPromise<{
    shell: true;
    detached: true;
    stdin: 'ignore';
    all: true;
    buffer: false;
    reject: false;
    forceKillAfterDelay: false;
  }>;
  try {
    subprocess = execa(command, {
      shell: true,
      detached: true, // own process group: see above
      stdin: 'ignore',
      all: true,
      buffer: false, // we keep only the first 4 KiB ourselves, see OutputCollector
      reject: false,
      forceKillAfterDelay: false,
    });
  } catch (err) {
    return {
      status: 'critical',
      output: truncateOutput(`could not start the check command: ${err instanceof Error ? err.message : String(err)}`),
    };
  }

  let timedOut = false;
  let cancelled = false;
  const killGroup = (): void => {
    const pid = subprocess.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, def.timeoutMs);
  const onAbort = (): void => {
    cancelled = true;
    killGroup();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  subprocess.all?.on('data', (chunk: Uint8Array | string) => output.add(chunk));

  let result: Awaited<typeof subprocess>;
  try {
    result = await subprocess;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }

  const text = output.text();
  const withText = (line: string): string => truncateOutput(text ? `${line}\n${text}` : line);
  if (cancelled) return { status: 'critical', output: withText('check cancelled') };
  if (timedOut)
    return {
      status: 'critical',
      output: withText(`timed out after ${def.timeoutMs}ms; killed the command and its children`),
    };
  if (typeof result.exitCode === 'number') {
    const status = exitCodeToCheckStatus(result.exitCode);
    return { status, output: text || `exit code ${result.exitCode}` };
  }
  if (result.signal) return { status: 'critical', output: withText(`killed by ${result.signal}`) };
  return { status: 'critical', output: withText(`could not run the check command: ${result.shortMessage}`) };
}
