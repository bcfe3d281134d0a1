/**
 * L7 forwarding (HTTP/1.1) with http-proxy: one request of the app → one endpoint picked by
 * the balancer → the endpoint's keep-alive pool. The mesh's own errors carry `x-meshctl-reason`:
 *   503 `no-healthy-endpoints <svc>`   the snapshot lists no endpoint
 *   502 `connect-failure <svc>`        every endpoint was tried and none could be reached
 *   502 `upstream-reset <svc>`         the endpoint dropped the request before answering
 *   502 `upstream-bad-response <svc>`  the endpoint's response headers cannot be relayed
 * Answers of the other side's inbound proxy (403 intention deny, 502 app-unavailable) pass
 * through as they came and are counted as mesh errors, not as the service's answers.
 *
 * Failover: a request goes to the next endpoint (each at most once) when the connection
 * cannot be made, or when the endpoint's inbound proxy answers `502 app-unavailable` — its
 * app could not be reached, so no byte of the request reached an app. Both are safe for any
 * method. A body is replayed from the chunks read so far, kept while the request is in
 * flight up to MAX_REPLAY_BYTES; a request with a larger body is not sent twice.
 *
 * Per request there is one Exchange object and no closure: the handlers below are bound once
 * per listener and find the exchange on the request. Figures are recorded on the exchange's
 * way out (res 'close'): counters, two histogram writes, and an access log line when on.
 */
import { type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import httpProxy from 'http-proxy';
import { pathOf, roundMs } from '../access-log.js';
import { REASON_HEADER, relayResponse, writeMeshAnswer, writeRawMeshAnswer } from '../http/answer.js';
import type { ThrottledLog } from '../log-throttle.js';
import type { ReasonCounter } from '../stats.js';
import { ensureTraceparent } from '../trace.js';
import { meshReason, peerReasonKind, type MeshErrorKind, type ReasonKind } from '../../errors/reasons.js';
import type { Traffic } from '../traffic.js';
import type { Cluster } from './cluster.js';
import type { OutboundContext } from './context.js';
import { ConnectFailure } from './dial.js';
import type { Endpoint } from './endpoint.js';
import { fixResponseHopByHop, stripRequestHopByHop } from '../http/headers.js';
import { fedServer, forwarder, hasBody, ignore } from '../http/common.js';

/** How long the app's idle keep-alive connections to us are kept. */
export const LISTENER_KEEP_ALIVE_MS = 5_000;
const KEEP_ALIVE_SEC = Math.floor(LISTENER_KEEP_ALIVE_MS / 1000);
/** Request bodies up to this size are kept while in flight, to be sent again to another endpoint. */
export const MAX_REPLAY_BYTES = 64 * 1024;

const EXCHANGE = Symbol('meshctl.exchange');

/** One request's way through the outbound pipeline. */
class Exchange {
  readonly fw: HttpForwarder;
  readonly cluster: Cluster;
  readonly hasBody: boolean;
  /** performance.now() when the request arrived, and when the current attempt began. */
  readonly startedAt: number;
  attemptAt: number;
  /** Endpoints already tried for this request, so the balancer skips them. */
  tried: Endpoint[] | undefined;
  /** The endpoint the request is in flight to (counted in its inFlight). */
  endpoint: Endpoint | undefined;
  /** The endpoint of the latest attempt; `lastOpen` while that attempt's outcome is not recorded on it. */
  last: Endpoint | undefined;
  lastOpen = false;
  proxyReq: ClientRequest | undefined;
  /** Holds the request body back until a connection is made, so a connect failure leaves it unread. */
  gate: PassThrough | undefined;
  capturing = false;
  /** Whether the body read so far is all in `body` (false once over MAX_REPLAY_BYTES or answered). */
  replayable: boolean;
  body: Buffer[] | undefined;
  bodyBytes = 0;
  /** Response body bytes, counted only while access logging. */
  bytesOut = 0;
  retriedStale = false;
  answered = false;
  /** The mesh's reason, when the mesh answered. */
  reason: string | undefined;
  /** Set only when access logging was on as the request came in. */
  traceparent: string | undefined;

  constructor(fw: HttpForwarder, cluster: Cluster, hasBody: boolean, startedAt: number) {
    this.fw = fw;
    this.cluster = cluster;
    this.hasBody = hasBody;
    this.startedAt = startedAt;
    this.attemptAt = startedAt;
    this.replayable = hasBody;
  }
}

type Carrier = IncomingMessage & { [EXCHANGE]?: Exchange };

function exchangeOf(req: IncomingMessage): Exchange | undefined {
  return (req as Carrier)[EXCHANGE];
}

/** Leaves the endpoint's in-flight count, once. */
function release(ex: Exchange): Endpoint | undefined {
  const ep = ex.endpoint;
  if (ep) {
    ep.inFlight -= 1;
    ex.endpoint = undefined;
  }
  return ep;
}

/** req 'data' (only for requests with a body): count it, and keep it for a replay while it is small. */
function onBodyChunk(this: Carrier, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex === undefined) return;
  ex.bodyBytes += chunk.length;
  if (!ex.replayable) return;
  if (ex.bodyBytes > MAX_REPLAY_BYTES) {
    ex.replayable = false;
    ex.body = undefined;
    return;
  }
  (ex.body ??= []).push(chunk);
}

/** proxyRes 'data', only while access logging. */
function onResponseChunk(this: Carrier, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex !== undefined) ex.bytesOut += chunk.length;
}

/** res 'close': the exchange is over, answered or not. An unfinished one frees its upstream connection. */
function onResponseClose(this: ServerResponse): void {
  const ex = exchangeOf(this.req);
  if (!ex) return;
  release(ex);
  if (!this.writableFinished && ex.proxyReq && !ex.proxyReq.destroyed) ex.proxyReq.destroy();
  ex.fw.finished(ex, this);
}

/**
 * x-forwarded-for/-proto/-host, set once per request here rather than by http-proxy's xfwd,
 * which would append again on every failover attempt.
 */
function setForwarded(req: IncomingMessage, proto: string): void {
  const h = req.headers;
  const remote = req.socket.remoteAddress ?? '';
  const prior = h['x-forwarded-for'];
  h['x-forwarded-for'] = prior ? `${prior}, ${remote}` : remote;
  if (h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = proto;
  if (h['x-forwarded-host'] === undefined && h.host !== undefined) h['x-forwarded-host'] = h.host;
}

/** With access logs on: the caller's valid traceparent goes on unchanged, otherwise a new one replaces it. */
function trace(req: IncomingMessage, ex: Exchange): void {
  const given = req.headers.traceparent;
  const tp = ensureTraceparent(given);
  if (tp !== given) {
    req.headers.traceparent = tp;
    // tracestate belongs to the trace it came with (W3C §3.3).
    if (req.headers.tracestate !== undefined) delete req.headers.tracestate;
  }
  ex.traceparent = tp;
}

export class HttpForwarder {
  /** Fed by the listener with accepted sockets; never listens itself. */
  readonly server: Server;
  /** The upstream's figures (owned by the listener, which outlives a cluster). */
  readonly traffic: Traffic;
  cluster: Cluster;
  draining = false;
  readonly #errors: ReasonCounter;
  readonly #log: ThrottledLog;
  readonly #ctx: OutboundContext;
  readonly #proxy: httpProxy;

  constructor(cluster: Cluster, traffic: Traffic, errors: ReasonCounter, log: ThrottledLog, ctx: OutboundContext) {
    this.cluster = cluster;
    this.traffic = traffic;
    this.#errors = errors;
    this.#log = log;
    this.#ctx = ctx;
    this.server = fedServer(LISTENER_KEEP_ALIVE_MS, this.#onRequest, this.#onUpgrade);
    this.#proxy = forwarder({ proxyReq: this.#onProxyReq, proxyRes: this.#onProxyRes, proxyReqWs: this.#onProxyReqWs });
  }

  handle(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ex = new Exchange(this, this.cluster, hasBody(req), performance.now());
    (req as Carrier)[EXCHANGE] = ex;
    this.traffic.requests += 1;
    stripRequestHopByHop(req.headers, false);
    setForwarded(req, 'http');
    if (this.#ctx.accessLog.on) trace(req, ex);
    res.on('close', onResponseClose);
    this.#attempt(req, res, ex, ex.cluster.pickEndpoint());
  };

  /** Stage 2: send the request to `ep` through its pool (stage 1, the pick, is the caller's). */
  #attempt(req: IncomingMessage, res: ServerResponse, ex: Exchange, ep: Endpoint | undefined): void {
    if (ep === undefined) {
      if (ex.tried === undefined) this.#meshError(res, ex, 503, ex.cluster.reasons.noEndpoints, 'no-healthy-endpoints');
      else this.#meshError(res, ex, 502, ex.cluster.reasons.connectFailure, 'connect-failure');
      return;
    }
    ex.endpoint = ep;
    ex.last = ep;
    ex.lastOpen = true;
    ep.inFlight += 1;
    ep.traffic.requests += 1;
    const agent = ex.cluster.poolFor(ep);
    if (ex.hasBody) {
      ex.gate = new PassThrough();
      this.#proxy.web(
        req,
        res,
        { target: ep.target, agent, buffer: ex.gate, selfHandleResponse: true },
        this.#onWebError,
      );
    } else {
      this.#proxy.web(req, res, { target: ep.target, agent, selfHandleResponse: true }, this.#onWebError);
    }
  }

  /** The pool handed the request a connected socket: now the body may flow (replayed first, after a failover). */
  readonly #onProxyReq = (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void => {
    const ex = exchangeOf(req);
    if (!ex) return;
    ex.proxyReq = proxyReq;
    if (res.destroyed) {
      proxyReq.destroy();
      return;
    }
    const gate = ex.gate;
    if (gate === undefined) return;
    if (ex.body !== undefined) for (const chunk of ex.body) gate.write(chunk);
    if (req.readableEnded) {
      gate.end();
      return;
    }
    if (!ex.capturing) {
      ex.capturing = true;
      req.on('data', onBodyChunk);
    }
    req.pipe(gate);
  };

  readonly #onProxyRes = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const ex = exchangeOf(req);
    if (!ex) {
      proxyRes.resume();
      return;
    }
    const status = proxyRes.statusCode ?? 0;
    const ep = ex.endpoint;
    const reason = proxyRes.headers[REASON_HEADER];
    const kind = typeof reason === 'string' ? peerReasonKind(reason) : undefined;
    if (kind === 'app-unavailable' && status === 502 && ep !== undefined && this.#failover(ex, req, res, proxyRes, ep))
      return;
    ex.replayable = false;
    ex.body = undefined;
    if (res.destroyed) {
      this.#count(ep, status, kind);
      proxyRes.resume();
      return;
    }
    fixResponseHopByHop(proxyRes.headers, res.shouldKeepAlive && !this.draining, KEEP_ALIVE_SEC);
    if (ex.traceparent !== undefined) {
      (proxyRes as Carrier)[EXCHANGE] = ex;
      proxyRes.on('data', onResponseChunk);
    }
    if (!relayResponse(res, proxyRes)) {
      proxyRes.resume();
      ep?.traffic.meshError('upstream-bad-response', 502);
      this.#log.warn(
        `bad-response:${ex.cluster.service}`,
        { upstream: ex.cluster.service, endpoint: ep?.id },
        "outbound: the endpoint's response headers cannot be relayed",
      );
      this.#meshError(res, ex, 502, ex.cluster.reasons.badResponse, 'upstream-bad-response');
      return;
    }
    if (kind !== undefined) ex.reason = reason as string;
    this.#count(ep, status, kind);
  };

  /** Counts the final answer on the upstream and on the endpoint that gave it. */
  #count(ep: Endpoint | undefined, status: number, kind: MeshErrorKind | undefined): void {
    if (kind === undefined) {
      this.traffic.response(status);
      ep?.traffic.response(status);
    } else {
      this.traffic.meshError(kind, status);
      ep?.traffic.meshError(kind, status);
    }
  }

  /**
   * The endpoint's inbound proxy could not reach its app: the request goes to the next
   * endpoint when there is one and its body can be sent again. Returns false to relay the 502.
   */
  #failover(ex: Exchange, req: IncomingMessage, res: ServerResponse, proxyRes: IncomingMessage, ep: Endpoint): boolean {
    if (res.destroyed || (ex.hasBody && !ex.replayable)) return false;
    const tried = (ex.tried ??= []);
    tried.push(ep);
    const next = ex.cluster.pickEndpoint(tried);
    if (next === undefined) return false;
    const now = performance.now();
    ep.traffic.meshError('app-unavailable', 502);
    ep.traffic.latencyMs(now - ex.attemptAt);
    ex.lastOpen = false;
    release(ex);
    this.#abandon(ex, req, proxyRes);
    this.#log.warn(
      `app-unavailable:${ep.id}`,
      { upstream: ex.cluster.service, endpoint: ep.id },
      "outbound: the endpoint's app is unavailable, trying the next endpoint",
    );
    ex.attemptAt = now;
    this.#attempt(req, res, ex, next);
    return true;
  }

  /**
   * Leaves an attempt that has its answer but will not be relayed. Its connection goes back to
   * the pool once the answer is read — unless the body was still being sent, which would leave
   * the far side waiting for the rest: then the connection is closed.
   */
  #abandon(ex: Exchange, req: IncomingMessage, proxyRes: IncomingMessage): void {
    const gate = ex.gate;
    const old = ex.proxyReq;
    ex.gate = undefined;
    ex.proxyReq = undefined;
    if (gate !== undefined) {
      req.unpipe(gate);
      gate.unpipe();
    }
    proxyRes.resume();
    if (old !== undefined && !old.writableFinished) old.destroy();
  }

  readonly #onWebError = (err: Error, req: IncomingMessage, target: ServerResponse | Socket, url?: unknown): void => {
    const res = target as ServerResponse;
    const ex = exchangeOf(req);
    if (!ex) return;
    // A late error of an attempt given up for another endpoint is not this attempt's.
    if (url !== undefined && ex.endpoint !== undefined && url !== ex.endpoint.target) return;
    if (res.destroyed || res.headersSent || req.socket.destroyed) {
      // The app went away (this may be its own request's error), or the answer was already under way.
      ex.proxyReq?.destroy();
      res.destroy();
      return;
    }
    const ep = release(ex);
    const gate = ex.gate;
    ex.gate = undefined;
    if (gate !== undefined) req.unpipe(gate);
    if (err instanceof ConnectFailure && ep) {
      // Nothing was sent: try the next endpoint with the same request.
      const now = performance.now();
      ep.traffic.meshError('connect-failure');
      ep.traffic.latencyMs(now - ex.attemptAt);
      ex.lastOpen = false;
      (ex.tried ??= []).push(ep);
      if (ex.tried.length === 8) req.setMaxListeners(0); // http-proxy adds two request listeners per attempt
      this.#log.warn(
        `connect:${ep.id}:${err.reason}`,
        { upstream: ex.cluster.service, endpoint: ep.id, reason: err.reason },
        'outbound: endpoint unreachable, trying the next one',
      );
      ex.attemptAt = now;
      this.#attempt(req, res, ex, ex.cluster.pickEndpoint(ex.tried));
      return;
    }
    const stale =
      ex.proxyReq !== undefined && ex.proxyReq.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
    if (stale && ep && !ex.retriedStale && (!ex.hasBody || ex.replayable)) {
      // A pooled connection the far side closed as we reused it: the request never arrived, and
      // this attempt does not count.
      ex.retriedStale = true;
      ep.traffic.requests -= 1;
      ex.lastOpen = false;
      ex.proxyReq = undefined;
      this.#attempt(req, res, ex, ex.cluster.pickEndpoint(ex.tried));
      return;
    }
    this.#log.warn(
      `reset:${ex.cluster.service}`,
      { upstream: ex.cluster.service, endpoint: ep?.id, code: (err as NodeJS.ErrnoException).code },
      'outbound: upstream dropped the request',
    );
    ep?.traffic.meshError('upstream-reset', 502);
    this.#meshError(res, ex, 502, ex.cluster.reasons.upstreamReset, 'upstream-reset');
  };

  #meshError(res: ServerResponse, ex: Exchange, status: number, reason: string, kind: ReasonKind): void {
    this.#errors.add(reason);
    this.traffic.meshError(kind, status);
    ex.reason = reason;
    ex.replayable = false;
    ex.body = undefined;
    writeMeshAnswer(res, status, reason, this.draining);
  }

  /** res 'close': latency on the upstream and on the endpoint of the last attempt, and the access log line. */
  finished(ex: Exchange, res: ServerResponse): void {
    const now = performance.now();
    const ms = now - ex.startedAt;
    this.traffic.latencyMs(ms);
    const ep = ex.last;
    if (ep !== undefined && ex.lastOpen) {
      ex.lastOpen = false;
      ep.traffic.latencyMs(now - ex.attemptAt);
    }
    ex.body = undefined;
    if (ex.traceparent !== undefined) this.#logLine(ex, res.req, res.headersSent ? res.statusCode : null, ms);
  }

  #logLine(ex: Exchange, req: IncomingMessage, status: number | null, ms: number): void {
    this.#ctx.accessLog.write({
      direction: 'outbound',
      protocol: 'http',
      source: this.#ctx.source,
      destination: ex.cluster.service,
      method: req.method ?? '',
      path: pathOf(req.url),
      status,
      durationMs: roundMs(ms),
      bytesIn: ex.bodyBytes,
      bytesOut: ex.bytesOut,
      endpoint: ex.last?.id,
      reason: ex.reason,
      traceparent: ex.traceparent,
    });
  }

  // --- WebSocket (and any other GET upgrade the endpoint accepts) -----------------------------

  readonly #onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    socket.on('error', ignore);
    socket.setNoDelay(true);
    this.traffic.requests += 1;
    const cluster = this.cluster;
    const ex = new Exchange(this, cluster, false, performance.now());
    (req as Carrier)[EXCHANGE] = ex;
    if (this.#ctx.accessLog.on) trace(req, ex);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
      this.#wsMeshError(socket, ex, req, 501, meshReason('unsupported-upgrade'), 'unsupported-upgrade');
      return;
    }
    const ep = cluster.pickEndpoint();
    if (!ep) {
      this.#wsMeshError(socket, ex, req, 503, cluster.reasons.noEndpoints, 'no-healthy-endpoints');
      return;
    }
    ex.endpoint = ep;
    ex.last = ep;
    ex.lastOpen = true;
    ep.inFlight += 1;
    ep.traffic.requests += 1;
    // A WebSocket holds its endpoint for its whole life, so it stays in flight until closed.
    socket.once('close', () => release(ex));
    stripRequestHopByHop(req.headers, true);
    setForwarded(req, 'ws');
    this.#proxy.ws(req, socket, head, { target: ep.target, agent: cluster.poolFor(ep) }, this.#onWsError);
  };

  readonly #onProxyReqWs = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const ex = exchangeOf(req);
    if (!ex) return;
    ex.proxyReq = proxyReq;
    proxyReq.once('upgrade', () => this.#wsAnswered(ex, req, 101, undefined));
    proxyReq.once('response', (r: IncomingMessage) => {
      const reason = r.headers[REASON_HEADER];
      if (typeof reason === 'string') ex.reason = reason;
      this.#wsAnswered(ex, req, r.statusCode ?? 0, typeof reason === 'string' ? peerReasonKind(reason) : undefined);
    });
  };

  /**
   * An upgrade was answered (or refused): counted and timed to its answer, not over the
   * WebSocket's life, so that long-lived sockets do not swamp request latency.
   */
  #wsAnswered(ex: Exchange, req: IncomingMessage, status: number, kind: MeshErrorKind | undefined): void {
    if (ex.answered) return;
    ex.answered = true;
    const now = performance.now();
    const ep = ex.last;
    this.#count(ex.lastOpen ? ep : undefined, status, kind);
    this.traffic.latencyMs(now - ex.startedAt);
    if (ep !== undefined && ex.lastOpen) {
      ex.lastOpen = false;
      ep.traffic.latencyMs(now - ex.attemptAt);
    }
    if (ex.traceparent !== undefined) this.#logLine(ex, req, status, now - ex.startedAt);
  }

  /** Errors before the upgrade get an HTTP answer; after it, http-proxy just ends the socket. */
  readonly #onWsError = (err: Error, req: IncomingMessage, target: ServerResponse | Socket): void => {
    const socket = target as Socket;
    const ex = exchangeOf(req);
    if (socket.bytesWritten > 0 || socket.destroyed || !ex) return;
    // http-proxy's WebSocket path ends the app's socket right after this callback, so there is
    // no failover for upgrades: the caller gets the reason and may retry.
    const connect = err instanceof ConnectFailure;
    this.#wsMeshError(
      socket,
      ex,
      req,
      502,
      connect ? ex.cluster.reasons.connectFailure : ex.cluster.reasons.upstreamReset,
      connect ? 'connect-failure' : 'upstream-reset',
    );
  };

  #wsMeshError(
    socket: Socket,
    ex: Exchange,
    req: IncomingMessage,
    status: number,
    reason: string,
    kind: ReasonKind,
  ): void {
    this.#errors.add(reason);
    ex.reason = reason;
    this.#wsAnswered(ex, req, status, kind);
    writeRawMeshAnswer(socket, status, reason);
  }

  /** Closes the app's idle keep-alive connections (during a drain). */
  closeIdle(): void {
    this.server.closeIdleConnections();
  }

  /** After the drain: every connection of the app's, and the server's connection checks. */
  closeAll(): void {
    this.server.closeAllConnections();
    this.server.close(ignore);
  }
}
