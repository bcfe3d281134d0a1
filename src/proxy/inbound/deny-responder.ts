/**
 * The answer to a refused caller of an http service: a small HTTP server (fed sockets, never
 * listening) that answers every request on the connection with `403` and `x-meshctl-reason`
 * and closes, so the caller's outbound proxy can pass the mesh's reason back to its app.
 * A refused connection that sends nothing is dropped after LOCAL_ANSWER_IDLE_MS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { meshReason, REASONS, type ReasonKind } from '../../errors/reasons.js';
import { pathOf, roundMs, type AccessLog } from '../access-log.js';
import { writeMeshAnswer } from '../http/answer.js';
import { onClientError } from '../http/common.js';
import { ignore } from '../../util/async.js';
import type { HttpCounter } from '../stats.js';
import { ensureTraceparent } from '../trace.js';
import type { Traffic } from '../traffic.js';

/** How long a refused http connection may sit idle before it is dropped. */
export const LOCAL_ANSWER_IDLE_MS = 10_000;

/** A refused connection's local answer. */
export interface LocalAnswer {
  readonly status: number;
  readonly reason: string;
  readonly kind: ReasonKind;
  /** The verified caller, for the access log. */
  readonly peer: string;
  readonly service: string;
}

const LOCAL_ANSWER = Symbol('meshctl.localAnswer');
type AnsweredSocket = Socket & { [LOCAL_ANSWER]?: LocalAnswer };

export interface DenyResponderDeps {
  readonly traffic: Traffic;
  /** Requests answered here, by status class. */
  readonly responses: HttpCounter;
  readonly accessLog: AccessLog;
}

export class DenyResponder {
  readonly #server: Server;
  readonly #deps: DenyResponderDeps;

  constructor(deps: DenyResponderDeps) {
    this.#deps = deps;
    this.#server = createServer(
      { requestTimeout: LOCAL_ANSWER_IDLE_MS, headersTimeout: LOCAL_ANSWER_IDLE_MS },
      this.#answerLocally,
    );
    this.#server.timeout = LOCAL_ANSWER_IDLE_MS;
    // An oversized or malformed head still gets the mesh's answer (431, 400, 408), then close.
    this.#server.on('clientError', onClientError);
    // Fed sockets only: connection tracking (closeIdleConnections, timeouts) starts at 'listening'.
    this.#server.emit('listening');
  }

  /** Answers every request on `socket` with `answer`, then closes it. */
  answer(socket: Socket, answer: LocalAnswer): void {
    (socket as AnsweredSocket)[LOCAL_ANSWER] = answer;
    this.#server.emit('connection', socket);
  }

  readonly #answerLocally = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    const answer = (req.socket as AnsweredSocket)[LOCAL_ANSWER] ?? {
      status: REASONS['intention-deny'].status,
      reason: meshReason('intention-deny'),
      kind: 'intention-deny',
      peer: '',
      service: '',
    };
    const { traffic, responses, accessLog } = this.#deps;
    responses.requests += 1;
    responses.response(answer.status);
    traffic.requests += 1;
    traffic.meshError(answer.kind, answer.status);
    // The caller's trace goes on in our line even though the request ends here.
    const traceparent = accessLog.on ? ensureTraceparent(req.headers.traceparent) : undefined;
    writeMeshAnswer(res, answer.status, answer.reason, true);
    const ms = performance.now() - startedAt;
    traffic.latencyMs(ms);
    if (traceparent !== undefined) {
      accessLog.write({
        direction: 'inbound',
        protocol: 'http',
        source: answer.peer,
        destination: answer.service,
        method: req.method ?? '',
        path: pathOf(req.url),
        status: answer.status,
        durationMs: roundMs(ms),
        bytesIn: 0,
        // The answer's body: the reason and a newline.
        bytesOut: Buffer.byteLength(answer.reason) + 1,
        reason: answer.reason,
        traceparent,
      });
    }
  };

  closeIdle(): void {
    this.#server.closeIdleConnections();
  }

  close(): void {
    this.#server.closeAllConnections();
    this.#server.close(ignore);
  }
}
