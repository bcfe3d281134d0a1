/**
 * The inbound side of an http service, per request, when a rule needs HTTP here (mode.ts; else
 * the connection is piped, tcp.ts): verified and allowed mesh connections
 * are fed to an http.Server (never listening itself), and each request goes to the app on
 * loopback through http-proxy and a keep-alive pool, so requests, status classes and latency
 * are recorded where the service is. WebSocket upgrades are passed to the app and then piped.
 *
 * When the app cannot be reached, the answer is `502 app-unavailable <svc>`, and only then:
 * the connection to the app failed, so no byte of the request reached it, and the caller's
 * outbound proxy may send the request to another instance. Anything that fails after that
 * is `502 app-reset <svc>` (the app may have seen the request; not retried elsewhere).
 * A response from the app never carries `x-meshctl-reason`: only the mesh says why.
 */
import { Agent, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type httpProxy from 'http-proxy';
import { meshReason, type MeshErrorKind, type ReasonKind } from '../../errors/reasons.js';
import { pathOf, roundMs, type AccessLog } from '../access-log.js';
import { REASON_HEADER, relayResponse, writeMeshAnswer, writeRawMeshAnswer } from '../http/answer.js';
import type { ThrottledLog } from '../log-throttle.js';
import { fixResponseHopByHop, stripRequestHopByHop } from '../http/headers.js';
import type { ProxySnapshot } from '../snapshot.js';
import { hasL7Permissions } from './mode.js';
import { normalizeTarget, PermissionRules } from './permissions.js';
import type { ReasonCounter } from '../stats.js';
import { ensureTraceparent } from '../trace.js';
import type { Traffic } from '../traffic.js';
import { clientErrorReason, fedServer, forwarder, hasBody, onClientError } from '../http/common.js';
import { ignore } from '../../util/async.js';
import { countChunk } from '../relay-gc.js';

/**
 * How long an idle mesh connection is kept. Longer than the callers' pools keep theirs idle
 * (30 s by default), so that the caller closes first and never reuses a connection we are
 * closing; the Keep-Alive hint we send says so too.
 */
export const INBOUND_KEEP_ALIVE_MS = 65_000;
const KEEP_ALIVE_HINT = `timeout=${Math.floor(INBOUND_KEEP_ALIVE_MS / 1000)}`;
/** Idle connections to the app are closed before a typical app's own 5 s keep-alive ends them. */
const APP_IDLE_MS = 4_000;

/** Errors that mean the connection to the app was never made. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EADDRNOTAVAIL', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

const PEER = Symbol('meshctl.peer');
const EXCHANGE = Symbol('meshctl.inboundExchange');

type PeerSocket = Socket & { [PEER]?: string };

class InboundExchange {
  readonly fw: InboundHttp;
  readonly peer: string;
  readonly hasBody: boolean;
  readonly startedAt: number;
  proxyReq: ClientRequest | undefined;
  retriedStale = false;
  answered = false;
  reason: string | undefined;
  /** Set when L7 permissions refused the request. */
  denialKind: 'intention-deny' | 'default-deny' | undefined = undefined;
  /** Set only when access logging was on as the request came in. */
  traceparent: string | undefined;
  bytesIn = 0;
  bytesOut = 0;

  constructor(fw: InboundHttp, peer: string, hasBody: boolean, startedAt: number) {
    this.fw = fw;
    this.peer = peer;
    this.hasBody = hasBody;
    this.startedAt = startedAt;
  }
}

type Carrier = IncomingMessage & { [EXCHANGE]?: InboundExchange };

function exchangeOf(req: IncomingMessage): InboundExchange | undefined {
  return (req as Carrier)[EXCHANGE];
}

function onRequestChunk(this: Carrier, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex !== undefined) ex.bytesIn += chunk.length;
}

function onResponseChunk(this: Carrier, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex !== undefined) ex.bytesOut += chunk.length;
}

function onResponseClose(this: ServerResponse): void {
  const ex = exchangeOf(this.req);
  if (!ex) return;
  if (!this.writableFinished && ex.proxyReq && !ex.proxyReq.destroyed) ex.proxyReq.destroy();
  ex.fw.finished(ex, this);
}

/** With access logs on: a valid traceparent goes on unchanged, otherwise a new one replaces it, so the app sees one. */
function trace(req: IncomingMessage, ex: InboundExchange): void {
  const given = req.headers.traceparent;
  const tp = ensureTraceparent(given);
  if (tp !== given) {
    req.headers.traceparent = tp;
    if (req.headers.tracestate !== undefined) delete req.headers.tracestate;
  }
  ex.traceparent = tp;
}

export interface InboundHttpDeps {
  readonly traffic: Traffic;
  /** Mesh errors by full reason, for `GET /stats`. */
  readonly errors: ReasonCounter;
  readonly log: ThrottledLog;
  readonly accessLog: AccessLog;
  /** A request head must be complete this long after its first byte (default HEADERS_TIMEOUT_MS, 10 s). */
  readonly headersTimeoutMs?: number;
  /** Requests refused by L7 permissions, by full reason, for `GET /stats`. */
  readonly denials: ReasonCounter;
}

export class InboundHttp {
  readonly server: Server;
  readonly #deps: InboundHttpDeps;
  readonly #agent: Agent;
  /** Made on the first request parsed (forwarder() loads http-proxy): a piping inbound never needs it. */
  #proxy: httpProxy | undefined;
  #service = '';
  #reasons = { unavailable: '', reset: '', badResponse: '' };
  #target = { host: '127.0.0.1', port: 0, protocol: 'http:' };
  /** The snapshot's L7 permissions for this service, when it has any (permissions.ts). */
  #rules: PermissionRules | undefined;
  /** http-proxy options, made once per snapshot rather than per request. */
  #web: httpProxy.ServerOptions = {};
  #ws: httpProxy.ServerOptions = {};

  constructor(deps: InboundHttpDeps) {
    this.#deps = deps;
    this.#agent = new Agent({ keepAlive: true, timeout: APP_IDLE_MS, scheduling: 'lifo' });
    this.server = fedServer(INBOUND_KEEP_ALIVE_MS, this.#onRequest, this.#onUpgrade);
    if (deps.headersTimeoutMs !== undefined) this.server.headersTimeout = deps.headersTimeoutMs;
    // The parser's refusals (a head over the limit, too slow, not HTTP) get their answer and a log line.
    this.server.off('clientError', onClientError);
    this.server.on('clientError', this.#onClientError);
  }

  #forwarder(): httpProxy {
    return (this.#proxy ??= forwarder({
      proxyReq: this.#onProxyReq,
      proxyRes: this.#onProxyRes,
      proxyReqWs: this.#onProxyReqWs,
    }));
  }

  readonly #onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    const kind = clientErrorReason(err);
    const peer = (socket as PeerSocket)[PEER];
    this.#deps.errors.add(meshReason(kind));
    this.#deps.log.warn(
      `client-error:${kind}`,
      { reason: kind, peer, code: err.code },
      'inbound: request refused before it reached the app',
    );
    onClientError(err, socket);
  };

  /** Takes the app's address and the service name from a snapshot (connections already open follow at their next request). */
  configure(snap: ProxySnapshot): void {
    const { address, port } = snap.service.app;
    if (address !== this.#target.host || port !== this.#target.port) {
      this.#target = { host: address, port, protocol: 'http:' };
      this.#web = { target: this.#target, agent: this.#agent, selfHandleResponse: true };
      // An upgrade gets a connection of its own; it never goes back to a pool.
      this.#ws = { target: this.#target, agent: false };
    }
    this.#rules = hasL7Permissions(snap, snap.service.name) ? new PermissionRules(snap) : undefined;
    const name = snap.service.name;
    if (name !== this.#service) {
      this.#service = name;
      this.#reasons = {
        unavailable: meshReason('app-unavailable', name),
        reset: meshReason('app-reset', name),
        badResponse: meshReason('app-bad-response', name),
      };
    }
  }

  /** A verified, allowed mesh connection from `peer` (a service name). */
  handle(socket: TLSSocket, peer: string): void {
    (socket as PeerSocket)[PEER] = peer;
    this.server.emit('connection', socket);
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ex = new InboundExchange(this, (req.socket as PeerSocket)[PEER] ?? '', hasBody(req), performance.now());
    (req as Carrier)[EXCHANGE] = ex;
    this.#deps.traffic.requests += 1;
    stripRequestHopByHop(req.headers, false);
    const logging = this.#deps.accessLog.on;
    if (logging) trace(req, ex);
    res.on('close', onResponseClose);
    if (this.#rules !== undefined && this.#refused(req, ex, this.#rules)) {
      this.#denyRequest(res, ex);
      return;
    }
    this.#forwarder().web(req, res, this.#web, this.#onError);
    // http-proxy has piped the body by now, so counting it cannot start the flow early.
    if (ex.hasBody) {
      req.on('data', countChunk);
      if (logging) req.on('data', onRequestChunk);
    }
  };

  /**
   * Decides `req` by the L7 permissions (its target normalized first, and sent on so); true,
   * with `ex.reason` set, when they refuse it.
   */
  #refused(req: IncomingMessage, ex: InboundExchange, rules: PermissionRules): boolean {
    const target = normalizeTarget(req.url ?? '/');
    if (target !== req.url) req.url = target;
    const denied = rules.check(ex.peer, req.method ?? '', target, req.headers);
    if (denied === undefined) return false;
    ex.reason = denied.reason;
    ex.denialKind = denied.kind;
    this.#deps.denials.add(denied.reason);
    return true;
  }

  /** The refusal of one request: 403 with the reason, and the connection stays for the next one. */
  #denyRequest(res: ServerResponse, ex: InboundExchange): void {
    this.#deps.traffic.meshError(ex.denialKind!, 403);
    // Node reads and drops a body the app was never sent, so the connection stays usable.
    writeMeshAnswer(res, 403, ex.reason!, this.draining);
  }

  readonly #onProxyReq = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const ex = exchangeOf(req);
    if (ex) ex.proxyReq = proxyReq;
  };

  readonly #onProxyRes = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const ex = exchangeOf(req);
    const status = proxyRes.statusCode ?? 0;
    if (!ex || res.destroyed) {
      if (ex) this.#deps.traffic.response(status);
      proxyRes.resume();
      return;
    }
    const h = proxyRes.headers;
    if (h[REASON_HEADER] !== undefined) delete h[REASON_HEADER];
    // Draining: this response closes its connection, so the caller sends the next request elsewhere.
    const keepAlive = res.shouldKeepAlive && !this.draining;
    fixResponseHopByHop(h, keepAlive, 0);
    // Our hop's idle timeout, not the app's (which governs only the pool to the app).
    if (keepAlive) h['keep-alive'] = KEEP_ALIVE_HINT;
    else if (h['keep-alive'] !== undefined) delete h['keep-alive'];
    if (ex.traceparent !== undefined) {
      (proxyRes as Carrier)[EXCHANGE] = ex;
      proxyRes.on('data', onResponseChunk);
    }
    if (!relayResponse(res, proxyRes)) {
      proxyRes.resume();
      this.#deps.log.warn(
        `bad-response:${this.#service}`,
        { app: `${this.#target.host}:${this.#target.port}` },
        "inbound: the app's response headers cannot be relayed",
      );
      this.#meshError(res, ex, this.#reasons.badResponse, 'app-bad-response');
      return;
    }
    this.#deps.traffic.response(status);
  };

  readonly #onError = (err: Error, req: IncomingMessage, target: ServerResponse | Socket): void => {
    const res = target as ServerResponse;
    const ex = exchangeOf(req);
    if (!ex) return;
    if (res.destroyed || res.headersSent || req.socket.destroyed) {
      ex.proxyReq?.destroy();
      res.destroy();
      return;
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const proxyReq = ex.proxyReq;
    ex.proxyReq = undefined;
    if (proxyReq?.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') && !ex.hasBody && !ex.retriedStale) {
      // A pooled connection the app closed as we reused it: the app never got the request.
      ex.retriedStale = true;
      this.#forwarder().web(req, res, this.#web, this.#onError);
      return;
    }
    if (this.#notConnected(err, code)) {
      this.#deps.log.warn(
        this.#reasons.unavailable,
        { reason: this.#reasons.unavailable, app: `${this.#target.host}:${this.#target.port}`, code },
        'inbound: cannot reach the local service',
      );
      this.#meshError(res, ex, this.#reasons.unavailable, 'app-unavailable');
      return;
    }
    this.#deps.log.warn(
      this.#reasons.reset,
      { reason: this.#reasons.reset, code },
      'inbound: the local service dropped a request',
    );
    this.#meshError(res, ex, this.#reasons.reset, 'app-reset');
  };

  #notConnected(err: Error, code: string): boolean {
    return (err as NodeJS.ErrnoException).syscall === 'connect' || NOT_CONNECTED.has(code);
  }

  #meshError(res: ServerResponse, ex: InboundExchange, reason: string, kind: ReasonKind): void {
    this.#deps.errors.add(reason);
    this.#deps.traffic.meshError(kind, 502);
    ex.reason = reason;
    writeMeshAnswer(res, 502, reason, this.draining);
  }

  /** res 'close': the request's latency and its access log line. */
  finished(ex: InboundExchange, res: ServerResponse): void {
    const ms = performance.now() - ex.startedAt;
    this.#deps.traffic.latencyMs(ms);
    if (ex.traceparent !== undefined) this.#logLine(ex, res.req, res.headersSent ? res.statusCode : null, ms);
  }

  #logLine(ex: InboundExchange, req: IncomingMessage, status: number | null, ms: number): void {
    this.#deps.accessLog.write({
      direction: 'inbound',
      protocol: 'http',
      source: ex.peer,
      destination: this.#service,
      method: req.method ?? '',
      path: pathOf(req.url),
      status,
      durationMs: roundMs(ms),
      bytesIn: ex.bytesIn,
      bytesOut: ex.bytesOut,
      reason: ex.reason,
      traceparent: ex.traceparent,
    });
  }

  // --- WebSocket ------------------------------------------------------------------------------

  readonly #onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const ex = new InboundExchange(this, (socket as PeerSocket)[PEER] ?? '', false, performance.now());
    (req as Carrier)[EXCHANGE] = ex;
    this.#deps.traffic.requests += 1;
    if (this.#deps.accessLog.on) trace(req, ex);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
      this.#wsMeshError(socket, ex, req, 501, meshReason('unsupported-upgrade'), 'unsupported-upgrade');
      return;
    }
    if (this.#rules !== undefined && this.#refused(req, ex, this.#rules)) {
      this.#wsAnswered(ex, req, 403, ex.denialKind);
      writeRawMeshAnswer(socket, 403, ex.reason!);
      return;
    }
    stripRequestHopByHop(req.headers, true);
    this.#forwarder().ws(req, socket, head, this.#ws, this.#onWsError);
  };

  readonly #onProxyReqWs = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const ex = exchangeOf(req);
    if (!ex) return;
    ex.proxyReq = proxyReq;
    proxyReq.once('upgrade', () => this.#wsAnswered(ex, req, 101, undefined));
    proxyReq.once('response', (r: IncomingMessage) => this.#wsAnswered(ex, req, r.statusCode ?? 0, undefined));
  };

  /** Timed to the answer, not over the WebSocket's life. */
  #wsAnswered(ex: InboundExchange, req: IncomingMessage, status: number, kind: MeshErrorKind | undefined): void {
    if (ex.answered) return;
    ex.answered = true;
    const traffic = this.#deps.traffic;
    if (kind === undefined) traffic.response(status);
    else traffic.meshError(kind, status);
    const ms = performance.now() - ex.startedAt;
    traffic.latencyMs(ms);
    if (ex.traceparent !== undefined) this.#logLine(ex, req, status, ms);
  }

  readonly #onWsError = (err: Error, req: IncomingMessage, target: ServerResponse | Socket): void => {
    const socket = target as Socket;
    const ex = exchangeOf(req);
    if (!ex || socket.bytesWritten > 0 || socket.destroyed) return;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (this.#notConnected(err, code))
      this.#wsMeshError(socket, ex, req, 502, this.#reasons.unavailable, 'app-unavailable');
    else this.#wsMeshError(socket, ex, req, 502, this.#reasons.reset, 'app-reset');
  };

  #wsMeshError(
    socket: Socket,
    ex: InboundExchange,
    req: IncomingMessage,
    status: number,
    reason: string,
    kind: ReasonKind,
  ): void {
    this.#deps.errors.add(reason);
    ex.reason = reason;
    this.#wsAnswered(ex, req, status, kind);
    writeRawMeshAnswer(socket, status, reason);
  }

  /**
   * Set when the proxy stops: requests in progress finish, and each connection closes after
   * its current response (`Connection: close`) instead of taking another.
   */
  draining = false;

  closeIdle(): void {
    this.server.closeIdleConnections();
  }

  /** After the drain: every mesh connection and every pooled app connection. */
  closeAll(): void {
    this.server.closeAllConnections();
    this.server.close(ignore);
    this.#agent.destroy();
  }
}
