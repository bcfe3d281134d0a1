/**
 * Refusals and connect failures are logged with their reason, but a port scan or a dead
 * endpoint under load must not turn into one log line per connection: each reason is
 * logged at most once per interval, with how many were left out since.
 */
import type { Logger } from '../util/log.js';

const MAX_KEYS = 1024;

export class ThrottledLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger, intervalMs = 10_000) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    this.#emit('warn', key, fields, msg);
  }

  info(key: string, fields: Record<string, unknown>, msg: string): void {
    this.#emit('info', key, fields, msg);
  }

  #emit(level: 'warn' | 'info', key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const seen = this.#last.get(key);
    if (seen && now - seen.at < this.#intervalMs) {
      seen.suppressed += 1;
      return;
    }
    if (!seen && this.#last.size >= MAX_KEYS) this.#last.clear();
    const suppressed = seen?.suppressed ?? 0;
    this.#last.set(key, { at: now, suppressed: 0 });
    this.#log[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}
