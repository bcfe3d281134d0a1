/** What every check runner returns, and the shape of a runner. */
import type { CheckDefinition, CheckStatus } from '../../api/schemas.js';

export type { CheckDefinition, CheckStatus };
export type CheckKind = CheckDefinition['kind'];

export interface CheckResult {
  status: CheckStatus;
  output: string;
}

/**
 * Runs one check once. A runner never rejects: every failure (bad target, refused
 * connection, timeout, cancellation) is a `critical` result whose output says why, so the
 * scheduler has one path only. It honours `def.timeoutMs` and stops early when `signal` aborts.
 */
export type CheckRunner = (def: CheckDefinition, signal?: AbortSignal) => Promise<CheckResult>;
