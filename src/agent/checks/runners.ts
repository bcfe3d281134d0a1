/** Picks the runner for a check kind. TTL checks have none: their state comes from reports. */
import type { CheckKind, CheckRunner } from './types.js';
import { runHttpCheck } from './http.js';
import { runTcpCheck } from './tcp.js';
import { runExecCheck } from './exec.js';

const RUNNERS: Record<Exclude<CheckKind, 'ttl'>, CheckRunner> = {
  http: runHttpCheck,
  tcp: runTcpCheck,
  exec: runExecCheck,
};

export function runnerFor(kind: CheckKind): CheckRunner | undefined {
  return kind === 'ttl' ? undefined : RUNNERS[kind];
}
