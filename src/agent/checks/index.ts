/** Health checks of the host agent: runners, spec parsing and the scheduler. */
export type { CheckDefinition, CheckKind, CheckResult, CheckRunner, CheckStatus } from './types.js';
export { runHttpCheck, httpStatusToCheckStatus } from './http.js';
export { runTcpCheck } from './tcp.js';
export { runExecCheck, exitCodeToCheckStatus } from './exec.js';
export { TtlCheck } from './ttl.js';
export { runnerFor } from './runners.js';
export { StatusFilter } from './thresholds.js';
export { OUTPUT_LIMIT, truncateOutput } from './output.js';
export { parseHttpTarget, parseTcpTarget, formatHostPort, type HostPort } from './target.js';
export {
  parseCheckSpec,
  parseCheckSpecs,
  type CheckSpecInput,
  type CheckSpecObject,
  type CheckSpecOptions,
  type ParsedSpec,
} from './parse.js';
export {
  CheckManager,
  type CheckChange,
  type CheckManagerEvents,
  type CheckManagerOptions,
  type CheckRun,
  type CheckStateView,
} from './check-manager.js';
