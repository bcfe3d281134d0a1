/** Structured logs (pino): JSON lines on stdout, which journald and `meshctl` tooling both read. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, opts: { level?: string; destination?: number } = {}): Logger {
  const level = opts.level ?? process.env.MESHCTL_LOG_LEVEL ?? 'info';
  return pino(
    { name: component, level, base: { component, pid: process.pid } },
    pino.destination({ dest: opts.destination ?? 1, sync: false }),
  );
}

/** A logger that drops everything, for library use in tests and one-shot CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
