/**
 * One store watch on etcd: its own gRPC watch stream, so that a reconnect resumes exactly
 * where this watcher stopped. etcd3's built-in watcher resumes from the header revision of the
 * last response, which during a history replay is the *current* revision, skipping the rest
 * of the replay; here the next revision to deliver is tracked from the events themselves.
 *
 * A lost stream (member died, member lost its leader, network) is reopened on some member
 * with capped exponential backoff and full jitter. A start revision that etcd has compacted
 * ends the watch with MESH_ERR_STORE_COMPACTED (once); the caller resyncs.
 */
import type { IWatchResponse } from 'etcd3';
import { MeshError } from '../errors/index.js';
import type { EtcdCodec } from './etcd-codec.js';
import type { EtcdConnection } from './etcd-connection.js';
import type { WatchBatch, WatchEvent, WatchOptions, Watcher } from './types.js';

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5_000;

type WatchStream = Awaited<ReturnType<EtcdConnection['client']['watchClient']['watch']>>;
type Etcd3Client = EtcdConnection['client'];

export class EtcdWatch implements Watcher {
  /** Next revision this watcher must deliver; undefined until etcd says where "now" is. */
  #next: number | undefined;
  #stream: WatchStream | undefined;
  #done = false;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Member the current stream is on (index into the store's endpoints). */
  #member = 0;

  readonly #conn: EtcdConnection;
  readonly #codec: EtcdCodec;
  readonly #prefix: string;
  readonly #onBatch: (batch: WatchBatch) => void;
  readonly #opts: WatchOptions;
  readonly #onEnd: (w: EtcdWatch) => void;

  constructor(
    conn: EtcdConnection,
    codec: EtcdCodec,
    prefix: string,
    onBatch: (batch: WatchBatch) => void,
    opts: WatchOptions,
    onEnd: (w: EtcdWatch) => void,
  ) {
    this.#conn = conn;
    this.#codec = codec;
    this.#prefix = prefix;
    this.#onBatch = onBatch;
    this.#opts = opts;
    this.#onEnd = onEnd;
    this.#next = opts.fromRevision;
    this.#open();
  }

  cancel(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#retryTimer);
    this.#dropStream();
    this.#onEnd(this);
  }

  #open(): void {
    if (this.#done) return;
    const { client, index } = this.#conn.watchMember();
    this.#member = index;
    this.#watchOn(client).then(
      (stream) => {
        if (this.#done) {
          stream.cancel();
          return;
        }
        this.#stream = stream;
        stream.on('data', (res: IWatchResponse) => this.#onResponse(stream, res));
        stream.on('error', () => this.#lost(stream));
        stream.on('end', () => this.#lost(stream));
        stream.write({
          create_request: {
            ...this.#codec.range(this.#prefix),
            start_revision: this.#next ?? 0,
            prev_kv: true,
          },
        });
      },
      () => {
        this.#conn.watchMemberFailed(index);
        this.#retryLater();
      },
    );
  }

  #watchOn(client: Etcd3Client): Promise<WatchStream> {
    return client.watchClient.watch(this.#conn.stream());
  }

  #onResponse(stream: WatchStream, res: IWatchResponse): void {
    if (this.#done || stream !== this.#stream) return;
    if (res.created) {
      this.#failures = 0;
      if (this.#next === undefined) this.#next = Number(res.header.revision) + 1;
    }
    if (res.canceled) {
      const compacted = Number(res.compact_revision);
      if (compacted > 0) {
        this.#fail(
          new MeshError(
            'MESH_ERR_STORE_COMPACTED',
            `revision ${this.#next ?? 0} is compacted in etcd; the oldest revision it can replay is ${compacted}`,
            { details: { fromRevision: this.#next, compactedRevision: compacted } },
          ),
        );
      } else {
        this.#lost(stream);
      }
      return;
    }
    for (const batch of this.#batches(res)) {
      if (this.#done) return;
      // etcd never sends a revision twice on one stream; a reconnect starts after the last one.
      if (this.#next !== undefined && batch.revision < this.#next) continue;
      this.#next = batch.revision + 1;
      try {
        this.#onBatch(batch);
      } catch {
        // A throwing callback is the caller's bug; it must not end the watch or the stream.
      }
    }
  }

  /** etcd sends a revision's events together; one batch per revision, in order. */
  #batches(res: IWatchResponse): WatchBatch[] {
    const out: Array<{ revision: number; events: WatchEvent[] }> = [];
    for (const ev of res.events) {
      const kv = this.#codec.kv(ev.kv);
      const event: WatchEvent =
        ev.type === 'Delete'
          ? {
              type: 'delete',
              kv: { ...kv, value: '' },
              ...(ev.prev_kv ? { prevKv: this.#codec.kv(ev.prev_kv) } : {}),
            }
          : { type: 'put', kv, ...(ev.prev_kv ? { prevKv: this.#codec.kv(ev.prev_kv) } : {}) };
      const last = out[out.length - 1];
      if (last && last.revision === kv.modRevision) last.events.push(event);
      else out.push({ revision: kv.modRevision, events: [event] });
    }
    return out;
  }

  #lost(stream: WatchStream): void {
    if (this.#done || stream !== this.#stream) return;
    this.#conn.watchMemberFailed(this.#member);
    this.#dropStream();
    this.#retryLater();
  }

  #retryLater(): void {
    if (this.#done) return;
    if (this.#conn.isClosed) {
      this.cancel();
      return;
    }
    const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.#failures);
    this.#failures = Math.min(this.#failures + 1, 16);
    this.#retryTimer = setTimeout(() => this.#open(), delay);
  }

  #fail(err: MeshError): void {
    const onError = this.#opts.onError;
    this.cancel();
    try {
      onError?.(err);
    } catch {
      // As with batches: a throwing callback must not become an unhandled error.
    }
  }

  #dropStream(): void {
    const s = this.#stream;
    this.#stream = undefined;
    if (!s) return;
    // Keep a listener: grpc-js emits 'error' (CANCELLED) after cancel().
    s.on('error', () => {});
    s.cancel();
  }
}
