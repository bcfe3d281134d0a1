/**
 * The frame the network checks (HTTP, TCP) share: one result per run, whichever comes first of
 * the probe's own answer, its timeout and the check's cancellation; what the probe opened is
 * torn down once the run is settled, so a late event cannot report twice or leak a socket.
 */
import type { CheckResult } from './types.js';

export interface ProbeRun {
  /** Settles the run; later calls are ignored. */
  finish(result: CheckResult): void;
  /** Tears `teardown` down once the run is settled (at once when it already is). */
  onSettled(teardown: () => void): void;
}

export interface ProbeOptions {
  /** How the check names itself in its output (`TCP connect 127.0.0.1:9000`). */
  prefix: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** The result when the timeout fires first (default: critical, "timed out after N ms"). */
  timedOut?: () => CheckResult;
}

export function runProbe(opts: ProbeOptions, start: (run: ProbeRun) => void): Promise<CheckResult> {
  const { prefix, timeoutMs, signal } = opts;
  const cancelled: CheckResult = { status: 'critical', output: `${prefix}: check cancelled` };
  if (signal?.aborted) return Promise.resolve(cancelled);
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    const teardowns: Array<() => void> = [];
    const finish = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      for (const t of teardowns) t();
      resolve(result);
    };
    const onAbort = (): void => finish(cancelled);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => finish(opts.timedOut?.() ?? { status: 'critical', output: `${prefix}: timed out after ${timeoutMs}ms` }),
      timeoutMs,
    );
    start({ finish, onSettled: (t) => (settled ? t() : void teardowns.push(t)) });
  });
}
