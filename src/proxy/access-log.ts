/**
 * Access logs: one JSON line per request (HTTP) or connection (TCP), from a pino instance of
 * its own, switched by the snapshot's `accessLog` ({enabled, path?}: a file, or stdout when
 * no path is given). Off by default.
 *
 * The data path only reads `on` (a boolean) when logging is off, so off costs nothing per
 * request. When on, lines go through an asynchronous destination (sync: false) with a bounded
 * buffer: a slow disk drops lines rather than slowing requests or growing memory.
 */
import { pino, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../util/log.js';

export interface AccessLogConfig {
  readonly enabled: boolean;
  readonly path?: string | undefined;
}

/** The fields of one line (pino adds `time`, ISO 8601). */
export interface AccessLogEntry {
  direction: 'inbound' | 'outbound';
  protocol: 'http' | 'tcp';
  /** The caller's service: the verified peer identity (inbound) or this service (outbound). */
  source: string;
  destination: string;
  method?: string;
  /** The request path, without the query string (which may carry secrets). */
  path?: string;
  /** The status the caller got; null when it got none (it went away first). */
  status?: number | null;
  durationMs: number;
  /** Request body bytes from the caller (HTTP), or bytes from the caller (TCP). */
  bytesIn: number;
  /** Response body bytes to the caller (HTTP), or bytes to the caller (TCP). */
  bytesOut: number;
  /** Outbound: the endpoint (instance id) that served the request. */
  endpoint?: string;
  /** Set when the mesh answered by itself (`x-meshctl-reason`). */
  reason?: string | undefined;
  /** Outbound HTTP: attempts made for the request (failover and retries included). */
  attempts?: number;
  /** Outbound HTTP: what resilience did, one flag per cause (`retried`, `timeout`, `circuit-open`, …). */
  flags?: readonly string[];
  traceparent?: string;
  /** TCP: the peer's address. */
  peer?: string;
}

/** Lines waiting for the disk beyond this are dropped (SonicBoom `maxLength`). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
const CLOSE_WAIT_MS = 2_000;

type Destination = ReturnType<typeof pino.destination>;

function isoTimeFirst(): string {
  return `"time":"${new Date().toISOString()}"`;
}

export function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export class AccessLog {
  /** Read on the data path before building a line. */
  on = false;
  readonly #log: Logger;
  #key = '';
  #logger: PinoLogger | undefined;
  #dest: Destination | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Where lines go now: a path, '-' for stdout, or undefined when off. */
  get target(): string | undefined {
    return this.#key === '' ? undefined : this.#key;
  }

  /** Applies a snapshot's setting; a change of file closes the old one after its lines are written. */
  configure(cfg: AccessLogConfig | undefined): void {
    const key = cfg?.enabled ? (cfg.path ?? '-') : '';
    if (key === this.#key) return;
    void this.#closeCurrent();
    this.#key = key;
    if (key === '') return;
    const dest = pino.destination({
      dest: key === '-' ? 1 : key,
      sync: false,
      mkdir: true,
      append: true,
      maxLength: MAX_BUFFERED_BYTES,
    });
    dest.on('error', (err: NodeJS.ErrnoException) => {
      this.#log.warn(
        { err: err.message, code: err.code, path: key },
        'access log cannot be written; access logging is off until a snapshot names another path',
      );
      if (this.#dest === dest) {
        this.on = false;
        this.#dest = undefined;
        this.#logger = undefined;
      }
    });
    this.#dest = dest;
    this.#logger = pino(
      {
        base: null,
        // The lines are records, not log messages: no level, no msg. With no level, the time
        // comes first and so must not start with the comma pino's own time functions add.
        formatters: { level: () => ({}) },
        timestamp: isoTimeFirst,
      },
      dest,
    );
    this.on = true;
  }

  write(entry: AccessLogEntry): void {
    this.#logger?.info(entry);
  }

  /** Writes out what is buffered and releases the file (stdout stays open). */
  close(): Promise<void> {
    this.#key = '';
    return this.#closeCurrent();
  }

  #closeCurrent(): Promise<void> {
    const dest = this.#dest;
    this.on = false;
    this.#dest = undefined;
    this.#logger = undefined;
    if (!dest) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      timer.unref();
      dest.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        dest.end();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
