/**
 * L7 forwarding (HTTP/1.1) with http-proxy: one request of the app → one endpoint picked by
 * the balancer → the endpoint's keep-alive pool. Connect failures fail over to the next
 * endpoint (each at most once); the mesh's own errors carry `x-meshctl-reason`:
 *   503 `no-healthy-endpoints <svc>`  the snapshot lists no endpoint
 *   502 `connect-failure <svc>`       every endpoint was tried and none could be reached
 *   502 `upstream-reset <svc>`        the endpoint dropped the request before answering
 * A 403 from the other side's inbound proxy (intention deny) passes through as it came.
 *
 * Per request there is one small Exchange object and no closure: the handlers below are
 * bound once per listener and find the exchange on the request.
 */
import { createServer, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import httpProxy from 'http-proxy';
import type { ThrottledLog } from '../log-throttle.js';
import { HttpCounter, type ReasonCounter } from '../stats.js';
import type { Cluster } from './cluster.js';
import { ConnectFailure } from './dial.js';
import type { Endpoint } from './endpoint.js';
import { fixResponseHopByHop, stripRequestHopByHop } from './headers.js';

/** How long the app's idle keep-alive connections to us are kept. */
export const LISTENER_KEEP_ALIVE_MS = 5_000;
const KEEP_ALIVE_SEC = Math.floor(LISTENER_KEEP_ALIVE_MS / 1000);
const HEADERS_TIMEOUT_MS = 60_000;

const EXCHANGE = Symbol('meshctl.exchange');

/** One request's way through the outbound pipeline. */
class Exchange {
  readonly cluster: Cluster;
  readonly hasBody: boolean;
  /** Endpoints that failed to connect for this request, so the balancer skips them. */
  tried: Endpoint[] | undefined;
  /** The endpoint the request is in flight to (counted in its inFlight). */
  endpoint: Endpoint | undefined;
  proxyReq: ClientRequest | undefined;
  /** Holds the request body back until a connection is made, so a connect failure leaves it unread. */
  gate: PassThrough | undefined;
  retriedStale = false;

  constructor(cluster: Cluster, hasBody: boolean) {
    this.cluster = cluster;
    this.hasBody = hasBody;
  }
}

type Carrier = IncomingMessage & { [EXCHANGE]?: Exchange };

function exchangeOf(req: IncomingMessage): Exchange | undefined {
  return (req as Carrier)[EXCHANGE];
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
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

/** res 'close': the exchange is over, answered or not. An unfinished one frees its upstream connection. */
function onResponseClose(this: ServerResponse): void {
  const ex = exchangeOf(this.req);
  if (!ex) return;
  release(ex);
  if (!this.writableFinished && ex.proxyReq && !ex.proxyReq.destroyed) ex.proxyReq.destroy();
}

function ignore(): void {}

/** A request the app sent that is not HTTP/1.1: answer as Node would by default, then close. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (socket.writable && socket.bytesWritten === 0) {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }
  socket.destroy();
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

export class HttpForwarder {
  /** Fed by the listener with accepted sockets; never listens itself. */
  readonly server: Server;
  readonly http = new HttpCounter();
  cluster: Cluster;
  draining = false;
  readonly #errors: ReasonCounter;
  readonly #log: ThrottledLog;
  readonly #proxy: httpProxy;

  constructor(cluster: Cluster, errors: ReasonCounter, log: ThrottledLog) {
    this.cluster = cluster;
    this.#errors = errors;
    this.#log = log;
    this.server = createServer({ keepAliveTimeout: LISTENER_KEEP_ALIVE_MS, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0 });
    this.server.on('request', this.#onRequest);
    this.server.on('upgrade', this.#onUpgrade);
    this.server.on('clientError', onClientError);
    this.#proxy = httpProxy.createProxyServer({ xfwd: false });
    // Errors arrive through the per-call callbacks; this listener only keeps a stray one from throwing.
    this.#proxy.on('error', ignore);
    this.#proxy.on('proxyReq', this.#onProxyReq);
    this.#proxy.on('proxyRes', this.#onProxyRes);
    this.#proxy.on('proxyReqWs', this.#onProxyReqWs);
  }

  handle(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.http.requests += 1;
    const ex = new Exchange(this.cluster, hasBody(req));
    (req as Carrier)[EXCHANGE] = ex;
    stripRequestHopByHop(req.headers, false);
    setForwarded(req, 'http');
    res.once('close', onResponseClose);
    this.#attempt(req, res, ex);
  };

  /** Stages 1 and 2: pick an endpoint not yet tried and send the request through its pool. */
  #attempt(req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
    const ep = ex.cluster.pickEndpoint(ex.tried);
    if (!ep) {
      if (ex.tried === undefined) this.#meshError(res, 503, ex.cluster.reasons.noEndpoints);
      else this.#meshError(res, 502, ex.cluster.reasons.connectFailure);
      return;
    }
    ex.endpoint = ep;
    ep.inFlight += 1;
    ep.http.requests += 1;
    const agent = ex.cluster.poolFor(ep);
    if (ex.hasBody) {
      ex.gate = new PassThrough();
      this.#proxy.web(req, res, { target: ep.target, agent, buffer: ex.gate }, this.#onWebError);
    } else {
      this.#proxy.web(req, res, { target: ep.target, agent }, this.#onWebError);
    }
  }

  /** The pool handed the request a connected socket: now the body may flow. */
  readonly #onProxyReq = (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void => {
    const ex = exchangeOf(req);
    if (!ex) return;
    ex.proxyReq = proxyReq;
    if (res.destroyed) {
      proxyReq.destroy();
      return;
    }
    if (ex.gate) req.pipe(ex.gate);
  };

  readonly #onProxyRes = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const status = proxyRes.statusCode ?? 0;
    this.http.response(status);
    exchangeOf(req)?.endpoint?.http.response(status);
    fixResponseHopByHop(proxyRes.headers, res.shouldKeepAlive && !this.draining, KEEP_ALIVE_SEC);
  };

  readonly #onWebError = (err: Error, req: IncomingMessage, target: ServerResponse | Socket): void => {
    const res = target as ServerResponse;
    const ex = exchangeOf(req);
    if (!ex) return;
    if (res.destroyed || res.headersSent || req.socket.destroyed) {
      // The app went away (this may be its own request's error), or the answer was already under way.
      ex.proxyReq?.destroy();
      res.destroy();
      return;
    }
    const ep = release(ex);
    ex.gate = undefined;
    if (err instanceof ConnectFailure && ep) {
      // Nothing was sent: try the next endpoint with the same request.
      (ex.tried ??= []).push(ep);
      if (ex.tried.length === 8) req.setMaxListeners(0); // http-proxy adds two request listeners per attempt
      this.#log.warn(`connect:${ep.id}:${err.reason}`, { upstream: ex.cluster.service, endpoint: ep.id, reason: err.reason }, 'outbound: endpoint unreachable, trying the next one');
      this.#attempt(req, res, ex);
      return;
    }
    const stale = ex.proxyReq !== undefined && ex.proxyReq.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
    if (stale && !ex.hasBody && !ex.retriedStale) {
      // A pooled connection the far side closed as we reused it: the request never arrived.
      ex.retriedStale = true;
      ex.proxyReq = undefined;
      this.#attempt(req, res, ex);
      return;
    }
    this.#log.warn(`reset:${ex.cluster.service}`, { upstream: ex.cluster.service, endpoint: ep?.id, code: (err as NodeJS.ErrnoException).code }, 'outbound: upstream dropped the request');
    this.#meshError(res, 502, ex.cluster.reasons.upstreamReset);
  };

  #meshError(res: ServerResponse, status: number, reason: string): void {
    this.#errors.add(reason);
    this.http.response(status);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = `${reason}\n`;
    res.writeHead(status, {
      'x-meshctl-reason': reason,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...(this.draining ? { connection: 'close' } : {}),
    });
    res.end(body);
  }

  // --- WebSocket (and any other GET upgrade the endpoint accepts) -----------------------------

  readonly #onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    socket.on('error', ignore);
    socket.setNoDelay(true);
    this.http.requests += 1;
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
      this.#rawError(socket, 501, 'unsupported-upgrade');
      return;
    }
    const cluster = this.cluster;
    const ep = cluster.pickEndpoint();
    if (!ep) {
      this.#rawError(socket, 503, cluster.reasons.noEndpoints);
      return;
    }
    const ex = new Exchange(cluster, false);
    ex.endpoint = ep;
    (req as Carrier)[EXCHANGE] = ex;
    ep.inFlight += 1;
    ep.http.requests += 1;
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
    proxyReq.once('upgrade', () => this.#countWs(ex, 101));
    proxyReq.once('response', (r: IncomingMessage) => this.#countWs(ex, r.statusCode ?? 0));
  };

  #countWs(ex: Exchange, status: number): void {
    this.http.response(status);
    ex.endpoint?.http.response(status);
  }

  /** Errors before the upgrade get an HTTP answer; after it, http-proxy just ends the socket. */
  readonly #onWsError = (err: Error, req: IncomingMessage, target: ServerResponse | Socket): void => {
    const socket = target as Socket;
    const ex = exchangeOf(req);
    if (socket.bytesWritten > 0 || socket.destroyed || !ex) return;
    // http-proxy's WebSocket path ends the app's socket right after this callback, so there is
    // no failover for upgrades: the caller gets the reason and may retry.
    const reason = err instanceof ConnectFailure ? ex.cluster.reasons.connectFailure : ex.cluster.reasons.upstreamReset;
    this.#rawError(socket, 502, reason);
  };

  #rawError(socket: Socket, status: number, reason: string): void {
    this.#errors.add(reason);
    this.http.response(status);
    const text = status === 503 ? 'Service Unavailable' : status === 501 ? 'Not Implemented' : 'Bad Gateway';
    const body = `${reason}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nx-meshctl-reason: ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  /** Closes the app's idle keep-alive connections (during a drain). */
  closeIdle(): void {
    this.server.closeIdleConnections();
  }

  closeAll(): void {
    this.server.closeAllConnections();
  }
}
