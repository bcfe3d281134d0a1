/**
 * The request body as the attempts see it: each attempt gets a fresh stream, which first
 * replays what was read so far and then carries on with the app's body as it arrives. What
 * was read is kept up to the replay limit while the exchange lasts; past it the body can no
 * longer be sent twice (`replayable` turns false and the kept chunks are dropped), so a big
 * upload streams through with bounded memory and is never failed over once under way.
 *
 * The app's request is read only while an attempt's stream wants data (backpressure all the
 * way to the app's socket), and a failed connect leaves it unread.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { relayed } from '../../relay-gc.js';

/** Request bodies up to this size are kept while in flight, to be sent again to another endpoint. */
export const MAX_REPLAY_BYTES = 64 * 1024;

/** One attempt's view of the body. */
class AttemptBody extends Readable {
  readonly #owner: ReplayBody;

  constructor(owner: ReplayBody) {
    super({ highWaterMark: 64 * 1024 });
    this.#owner = owner;
  }

  override _read(): void {
    this.#owner.wanted(this);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#owner.detach(this);
    cb(err);
  }
}

export class ReplayBody {
  readonly #source: IncomingMessage;
  readonly #limit: number;
  #kept: Buffer[] | undefined = [];
  /** Bytes read from the app so far. */
  bytes = 0;
  #current: AttemptBody | undefined;
  #ended = false;
  #failed: Error | undefined;
  #listening = false;

  constructor(source: IncomingMessage, limit = MAX_REPLAY_BYTES) {
    this.#source = source;
    this.#limit = limit;
  }

  /** Whether a new attempt could still send the whole body. */
  get replayable(): boolean {
    return this.#kept !== undefined && this.#failed === undefined;
  }

  /**
   * A fresh stream for the next attempt; the previous one is detached (it gets no more data).
   * Throws when the body is not replayable any more (the pipeline asks `replayable` first).
   */
  attempt(): Readable {
    if (!this.replayable) throw new Error('the request body can no longer be replayed');
    if (this.#current !== undefined) this.detach(this.#current);
    const s = new AttemptBody(this);
    for (const chunk of this.#kept!) s.push(chunk);
    if (this.#ended) s.push(null);
    this.#current = s;
    return s;
  }

  /** Nothing more is kept (the exchange has its answer). */
  release(): void {
    this.#kept = undefined;
  }

  /** @internal the attempt's stream wants more. */
  wanted(s: AttemptBody): void {
    if (s !== this.#current || this.#ended) return;
    if (!this.#listening) {
      this.#listening = true;
      this.#source.on('data', this.#onData);
      this.#source.on('end', this.#onEnd);
      this.#source.on('close', this.#onAborted);
      this.#source.on('error', this.#onAborted);
    }
    this.#source.resume();
  }

  /** @internal the stream is no longer the current attempt's. */
  detach(s: AttemptBody): void {
    if (s !== this.#current) return;
    this.#current = undefined;
    if (!this.#ended) this.#source.pause();
    if (!s.destroyed) s.destroy();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    relayed(chunk.length);
    if (this.#kept !== undefined) {
      if (this.bytes > this.#limit) this.#kept = undefined;
      else this.#kept.push(chunk);
    }
    const s = this.#current;
    if (s === undefined || !s.push(chunk)) this.#source.pause();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#current?.push(null);
  };

  /** The app went away mid-upload: the attempt's stream fails, so the client library gives up on it. */
  readonly #onAborted = (): void => {
    if (this.#ended) return;
    this.#failed = new Error('the request body was cut off by the client');
    this.#current?.destroy(this.#failed);
  };
}
