/**
 * TTL check: nothing runs. The service (or an operator) reports its own status with
 * `meshctl check pass|warn|fail ID [--note]`; each report re-arms a timer, and when `ttlMs`
 * passes without one the check turns critical. Reports take effect at once: the
 * success/failure thresholds are for checks the agent runs itself (as in Consul).
 */
import { formatDuration } from '../../util/duration.js';
import type { CheckResult, CheckStatus } from './types.js';
import { truncateOutput } from './output.js';

export class TtlCheck {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  readonly #onExpire: (result: CheckResult) => void;

  constructor(
    readonly ttlMs: number,
    onExpire: (result: CheckResult) => void,
  ) {
    this.#onExpire = onExpire;
  }

  /** Starts the countdown (at registration: a TTL check never reported to expires too). */
  start(): void {
    this.#arm();
  }

  /** Records a report and restarts the countdown; returns the state it sets. */
  update(status: CheckStatus, note = ''): CheckResult {
    this.#arm();
    return { status, output: truncateOutput(note) };
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onExpire({ status: 'critical', output: `TTL expired: no update within ${formatDuration(this.ttlMs)}` });
    }, this.ttlMs);
    // A TTL countdown alone must not keep the agent process alive.
    this.#timer.unref();
  }
}
