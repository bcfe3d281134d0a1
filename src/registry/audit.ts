/**
 * The registry's audit log: one JSON line per write made with a token (admin or join), with the
 * token id that made it, in `<data-dir>/audit.log` (0600). Reads are not logged; a failed
 * write to the log is reported in the registry log and never fails the request.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from '../util/log.js';

export interface AuditEntry {
  /** Token id (admin or join), or "recovery" for the local recovery command. */
  tokenId: string;
  kind: 'admin' | 'join' | 'recovery';
  action: string;
  status?: number;
  source?: string;
  detail?: Record<string, unknown>;
}

export class AuditLog {
  readonly #stream: WriteStream | undefined;
  #broken = false;

  readonly #log: Logger;

  constructor(
    readonly path: string | undefined,
    log: Logger,
  ) {
    this.#log = log;
    if (!path) return;
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#stream.on('error', (err) => {
      if (!this.#broken) this.#log.error({ err: err.message, path }, 'cannot write the audit log');
      this.#broken = true;
    });
  }

  record(entry: AuditEntry): void {
    if (!this.#stream || this.#broken) return;
    this.#stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  }

  async close(): Promise<void> {
    const s = this.#stream;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => s.end(resolve));
  }
}
