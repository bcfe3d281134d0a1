/** Check output is bounded: it travels to the registry, whose check state holds at most 4096 characters. */

/** Most bytes of output a check reports (the registry's check-state limit). */
export const OUTPUT_LIMIT = 4096;

const MARKER = '\n... (output truncated)';

/**
 * Cuts `text` to at most `limit` UTF-8 bytes, ending with a marker when something was
 * cut. Cuts on a character boundary so no half character reaches the registry.
 */
export function truncateOutput(text: string, limit = OUTPUT_LIMIT): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= limit) return text;
  const room = Math.max(0, limit - Buffer.byteLength(MARKER));
  return utf8Prefix(bytes, room) + MARKER;
}

/** The longest whole-character prefix of `bytes` that fits in `max` bytes. */
export function utf8Prefix(bytes: Uint8Array, max: number): string {
  let end = Math.min(max, bytes.length);
  // Step back over continuation bytes (10xxxxxx) so the cut lands before a lead byte.
  if (end < bytes.length) {
    while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('utf8');
}

/**
 * Collects the first `limit` bytes of a stream of chunks and counts the rest, so a chatty
 * check cannot grow the agent's memory.
 */
export class OutputCollector {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #dropped = 0;

  readonly #limit;

  constructor(limit = OUTPUT_LIMIT) {
    this.#limit = limit;
  }

  get full(): boolean {
    return this.#kept >= this.#limit;
  }

  add(chunk: Uint8Array | string): void {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const room = this.#limit - this.#kept;
    if (room <= 0) {
      this.#dropped += buf.length;
      return;
    }
    const take = Math.min(buf.length, room);
    this.#chunks.push(Buffer.from(buf.subarray(0, take)));
    this.#kept += take;
    this.#dropped += buf.length - take;
  }

  /** The collected text, truncated with a marker when anything was dropped. */
  text(): string {
    const all = Buffer.concat(this.#chunks);
    if (this.#dropped === 0) return truncateOutput(all.toString('utf8'), this.#limit);
    const room = Math.max(0, this.#limit - Buffer.byteLength(MARKER));
    return utf8Prefix(all, room) + MARKER;
  }
}
