/**
 * Stage 5, the client: sends one attempt to one endpoint and says how it ended, as an Outcome.
 * The only module that imports the HTTP client library (undici): a Pool per endpoint, keep-alive,
 * at most MAX_CONNECTIONS_PER_ENDPOINT connections, no pipelining. Its connections are made by
 * `dialEndpoint` (TLS 1.3, the SPIFFE identity check of the upstream service), so the pool only
 * ever holds verified sockets, and a connect failure means no byte of the request was sent.
 *
 * One `Dispatch` object per attempt is undici's handler, the response body the pipeline relays,
 * and what the caller's signal aborts: no stream and no promise beyond the one `send` returns.
 */
import diagnostics from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import { ignore } from '../../../util/async.js';
import { relayed } from '../../relay-gc.js';
import { ConnectFailure, dialEndpoint, type DialTarget, type DialTls } from '../dial.js';
import { peerReasonOf, type Outcome, type ResponseBody } from './outcome.js';

// undici's index also loads fetch, WebSocket, caches, mocks and the proxy agents: ≈ 9.5 MB of
// RSS in every proxy process (docs/BENCHMARKS.md "RSS"), for a Pool. Its Pool module alone is
// the same class (the index re-exports it); the lockfile pins the version this path is in, and
// every L7 test through a proxy runs on it.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof UndiciPool;

/** Connections one proxy keeps to one endpoint at most; more requests wait in the pool's queue. */
export const MAX_CONNECTIONS_PER_ENDPOINT = 256;
/**
 * The client's own bound on waiting for a response head and between body chunks, so no
 * attempt can hang forever. The request and per-try timeouts (./resilience.ts, 15 s by
 * default) are shorter: the forwarder and the pipeline abort the attempt's signal.
 */
export const CLIENT_TIMEOUT_MS = 300_000;

/** What the client sends: the app's request line and headers, hop-by-hop headers already removed. */
export interface OutboundRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * Why an attempt was given up by this side: the app went away, the exchange's request timeout
 * passed (the mesh answers 504), or only this attempt's per-try timeout passed (the attempt
 * ends as a timeout, which a retry may follow).
 */
export type AbortCause = 'gone' | 'request-timeout' | 'per-try-timeout';

/**
 * The caller's side of one exchange: aborted when the app goes away or the request timeout
 * passes, which aborts the attempt in flight and frees its upstream connection. One per
 * exchange; `abortAttempt` ends only the attempt in flight (its per-try timeout).
 */
export class AttemptSignal {
  aborted = false;
  /** Set with `aborted`. */
  cause: AbortCause | undefined;
  #onAbort: ((cause: AbortCause) => void) | undefined;

  abort(cause: AbortCause = 'gone'): void {
    if (this.aborted) return;
    this.aborted = true;
    this.cause = cause;
    this.abortAttempt(cause);
  }

  /** Ends the attempt in flight, if any, without ending the exchange. */
  abortAttempt(cause: AbortCause): void {
    const f = this.#onAbort;
    this.#onAbort = undefined;
    f?.(cause);
  }

  /** @internal the attempt in flight. */
  watch(f: ((cause: AbortCause) => void) | undefined): void {
    this.#onAbort = f;
  }

  #cancelDeadline: (() => void) | undefined;

  /** The exchange's request timeout, armed by the pipeline once it knows the route (`cancel` stops it). */
  setDeadline(cancel: () => void): void {
    this.#cancelDeadline = cancel;
  }

  /** The exchange is over: its request timeout no longer runs. */
  clearDeadline(): void {
    const f = this.#cancelDeadline;
    this.#cancelDeadline = undefined;
    f?.();
  }
}

export interface ClientSettings {
  readonly connectTimeoutMs: number;
  /** How long an idle pooled connection is kept (the server's Keep-Alive hint may shorten it). */
  readonly idleTimeoutMs: number;
  /** The pool's connections (max_connections of the upstream); MAX_CONNECTIONS_PER_ENDPOINT when absent. */
  readonly connections?: number;
}

// A pooled connection the far side closed just as it was reused must be told from a request
// that reached the peer: undici says neither which socket a request went out on nor whether it
// was reused. It does publish `sendHeaders` with the socket right after calling the handler's
// onRequestStart, synchronously, in one function (client-h1 writeH1): the dispatch that has just
// started is the one whose headers go out on that socket.
const SERVED = Symbol('meshctl.served');
type Counted = { [SERVED]?: true };
let starting: Dispatch | undefined;
function expectSocket(d: Dispatch): void {
  starting = d;
}
diagnostics.subscribe('undici:client:sendHeaders', (message) => {
  const d = starting;
  starting = undefined;
  if (d === undefined) return;
  const socket = (message as { socket: Socket & Counted }).socket;
  d.socket = socket;
  d.reused = socket[SERVED] === true;
  socket[SERVED] = true;
  if (d.chunked) holdWrites(socket);
});

// undici writes a chunked request body's head with its first chunk, uncorked at once, and the
// terminating `0\r\n\r\n` alone once the body stream ends: two TLS records, two writes and two
// wake-ups of the peer for a small body, where one would do (docs/BENCHMARKS.md, "The L7
// outbound's socket writes"). Corked until the event loop's check phase, what the body's first
// read brought (its end too, for a body that came with its head) leaves in one write; a body
// that comes later is not held, and the cork holds at most one turn of the loop.
function holdWrites(socket: Socket): void {
  socket.cork();
  setImmediate(release, socket);
}
function release(socket: Socket): void {
  socket.uncork();
}

const ABORTED = new Error('the caller went away');
const TIMED_OUT = new Error('the attempt timed out');

class Dispatch implements Dispatcher.DispatchHandler, ResponseBody {
  readonly #resolve: (o: Outcome) => void;
  readonly #signal: AttemptSignal;
  #controller: Dispatcher.DispatchController | undefined;
  #settled = false;
  #res: ServerResponse | undefined;
  #done: ((err: Error | undefined) => void) | undefined;
  #ended = false;
  #cut: Error | undefined;
  reused = false;
  /** The request has a body of no stated length (undici sends it chunked). */
  chunked = false;
  /** The connection this attempt's request went out on: a peer's mesh answer is proven against it. */
  socket: Socket | undefined;
  bytes = 0;

  constructor(signal: AttemptSignal, resolve: (o: Outcome) => void) {
    this.#signal = signal;
    this.#resolve = resolve;
    signal.watch(this.#abort);
  }

  #settle(o: Outcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(o);
  }

  readonly #abort = (cause: AbortCause): void => {
    const perTry = cause === 'per-try-timeout';
    // Settled first: undici may report the abort through onResponseError at once, which must
    // not read as a reset. Once the response began, that report cuts the body being relayed.
    this.#settle(perTry ? { kind: 'timeout', error: TIMED_OUT, perTry: true } : { kind: 'aborted' });
    this.#controller?.abort(perTry ? TIMED_OUT : ABORTED);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#signal.aborted) controller.abort(ABORTED);
    else expectSocket(this);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    // 1xx: Node's server has already told the app `100 Continue`; nothing else is relayed.
    if (status < 200) return;
    // Held until the pipeline relays or discards the body.
    controller.pause();
    const peer = peerReasonOf(headers, this.socket);
    this.#settle({
      kind: 'response',
      status,
      statusMessage,
      headers,
      body: this,
      peerReason: peer?.reason,
      peerKind: peer?.kind,
    });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
    relayed(chunk.length);
    const res = this.#res;
    if (res === undefined || res.destroyed) return;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', this.#resume);
    }
  }

  readonly #resume = (): void => {
    this.#controller?.resume();
  };

  onResponseEnd(): void {
    this.#ended = true;
    this.#signal.watch(undefined);
    this.#finish(undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#signal.watch(undefined);
    if (!this.#settled) {
      this.#settle(this.#classify(err));
      return;
    }
    this.#cut = err;
    this.#finish(err);
  }

  #finish(err: Error | undefined): void {
    const done = this.#done;
    if (done === undefined) return;
    this.#done = undefined;
    if (err === undefined) this.#res!.end();
    done(err);
  }

  #classify(err: Error): Outcome {
    if (err instanceof ConnectFailure) return { kind: 'connect-failure', error: err };
    if (this.#signal.aborted) return { kind: 'aborted' };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'UND_ERR_HEADERS_TIMEOUT') return { kind: 'timeout', error: err, perTry: false };
    const dropped = code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
    return { kind: 'reset', stale: this.reused && dropped, code, error: err };
  }

  // --- ResponseBody --------------------------------------------------------------------------

  relay(res: ServerResponse, done: (err: Error | undefined) => void): void {
    this.#res = res;
    this.#done = done;
    if (this.#ended || this.#cut !== undefined) {
      this.#finish(this.#cut);
      return;
    }
    this.#controller?.resume();
  }

  discard(): void {
    if (!this.#ended) this.#controller?.resume();
  }
}

/** One endpoint's keep-alive pool. Replaced, never reconfigured: a retired pool finishes what it has and closes. */
export class EndpointClient {
  readonly #pool: UndiciPool;

  constructor(endpoint: DialTarget, tls: DialTls, settings: ClientSettings) {
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    this.#pool = new Pool(`https://${host}:${endpoint.port}`, {
      connections: settings.connections ?? MAX_CONNECTIONS_PER_ENDPOINT,
      pipelining: 1,
      keepAliveTimeout: settings.idleTimeoutMs,
      keepAliveMaxTimeout: settings.idleTimeoutMs,
      headersTimeout: CLIENT_TIMEOUT_MS,
      bodyTimeout: CLIENT_TIMEOUT_MS,
      connect: (_opts, cb) => {
        dialEndpoint(endpoint, tls, settings.connectTimeoutMs, false, (err, socket) => {
          if (err) cb(err, null);
          else cb(null, socket!);
        });
      },
    });
    // A failed dial is reported to the requests that waited for it; the event only must not throw.
    this.#pool.on('connectionError', ignore);
  }

  /** Sends one attempt; never rejects. `body` is this attempt's own stream (null: no body). */
  send(request: OutboundRequest, body: Readable | null, signal: AttemptSignal): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      if (signal.aborted) {
        resolve({ kind: 'aborted' });
        return;
      }
      const d = new Dispatch(signal, resolve);
      d.chunked = body !== null && request.headers['content-length'] === undefined;
      this.#pool.dispatch({ method: request.method, path: request.path, headers: request.headers, body }, d);
    });
  }

  /** Out of service (rotation, endpoint gone): requests in flight finish, then the connections close. */
  retire(): void {
    this.#pool.close().catch(ignore);
  }

  /** Every connection closes now, in use or not (shutdown after the drain). */
  destroy(): void {
    this.#pool.destroy().catch(ignore);
  }
}
