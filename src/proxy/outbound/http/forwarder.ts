/**
 * The L7 outbound forwarder: the HTTP server the listener feeds with the app's connections.
 * One exchange per request: it prepares the request (hop-by-hop headers, x-forwarded-*,
 * traceparent), runs the pipeline (route → split → balance → attempt, ./pipeline.ts) and writes
 * what it decided — the endpoint's answer, relayed with backpressure, or the mesh's own answer
 * with `x-meshctl-reason`:
 *   503 `no-healthy-endpoints <svc>`   the snapshot lists no endpoint
 *   502 `connect-failure <svc>`        every endpoint was tried and none could be reached
 *   502 `upstream-reset <svc>`         the endpoint dropped the request before answering
 *   502 `upstream-bad-response <svc>`  the endpoint's response headers cannot be relayed
 *   504 `request-timeout <svc> 15s`    no whole answer within the request timeout (the attempt
 *                                      in flight is aborted and its connection closed; a
 *                                      response already under way is cut)
 * Answers of the other side's inbound proxy (403 intention deny, 502 app-unavailable) pass
 * through as they came and are counted as mesh errors, not as the service's answers.
 *
 * Figures are recorded as attempts end and on the exchange's way out (res 'close'): counters,
 * histogram writes, and an access log line when on. WebSocket upgrades go to ./upgrade.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { meshReason, REASON_HEADER, REASONS, type MeshErrorKind, type ReasonKind } from '../../../errors/reasons.js';
import { pathOf, roundMs } from '../../access-log.js';
import { writeMeshAnswer } from '../../http/answer.js';
import { clientErrorReason, fedServer, hasBody } from '../../http/common.js';
import { ignore } from '../../../util/async.js';
import { fixResponseHopByHop, stripRequestHopByHop } from '../../http/headers.js';
import type { ThrottledLog } from '../../log-throttle.js';
import type { ReasonCounter } from '../../stats.js';
import type { Traffic } from '../../traffic.js';
import type { Random } from '../balancers.js';
import type { Cluster } from '../cluster.js';
import type { OutboundContext } from '../context.js';
import type { Endpoint } from '../endpoint.js';
import type { Attempt } from './attempt.js';
import type { CircuitBreaker } from './breaker.js';
import { ResilienceFigures } from './figures.js';
import { failoverSafe } from './outcome.js';
import { AttemptSignal, type OutboundRequest } from './client.js';
import { runPipeline, type PipelineDeps, type PipelineResult } from './pipeline.js';
import { ReplayBody } from './replay-body.js';
import { defaultRoutes, type RouteRequest, type RouteTable } from './route.js';
import type { SplitTarget } from './split.js';
import { setForwarded, trace } from './request.js';
import { UpgradeTunnel } from './upgrade.js';

/** How long the app's idle keep-alive connections to us are kept. */
export const LISTENER_KEEP_ALIVE_MS = 5_000;
const KEEP_ALIVE_SEC = Math.floor(LISTENER_KEEP_ALIVE_MS / 1000);
/**
 * Access log flags: `failover` (another endpoint after one nothing reached), `retried`,
 * `retry-budget-exhausted`, `retry-overflow` (max_concurrent_retries), `timeout` (request or
 * per-try), `circuit-open` (a limit refused the request).
 */
export type ResilienceFlag =
  'failover' | 'retried' | 'retry-budget-exhausted' | 'retry-overflow' | 'timeout' | 'circuit-open';

function flag(ex: Exchange, f: ResilienceFlag): void {
  if (ex.traceparent === undefined) return;
  ex.flags ??= [];
  if (!ex.flags.includes(f)) ex.flags.push(f);
}

/** The flags an answer's last attempt and the pipeline's result say. */
function resultFlags(ex: Exchange, r: PipelineResult): void {
  if (ex.traceparent === undefined || r.kind === 'gone') return;
  const a = r.attempt;
  if (a !== undefined) {
    ex.attempts = a.number;
    if (a.cause === 'retry') flag(ex, 'retried');
    if (a.cause === 'failover') flag(ex, 'failover');
  }
  if (r.retryDenied === 'budget') flag(ex, 'retry-budget-exhausted');
  if (r.retryDenied === 'overflow') flag(ex, 'retry-overflow');
  if (r.kind === 'answer' && r.reason === 'request-timeout') flag(ex, 'timeout');
  if (r.kind === 'answer' && r.reason === 'circuit-open') flag(ex, 'circuit-open');
}

/** On every answer the pipeline made attempts for: how many (failover and retries included). */
export const ATTEMPTS_HEADER = 'x-meshctl-attempts';

/** One request's way through the outbound side. */
class Exchange {
  readonly startedAt: number;
  readonly signal = new AttemptSignal();
  readonly body: ReplayBody | undefined;
  /** The attempt whose answer is relayed (its endpoint's in-flight count is held until the end). */
  final: Attempt | undefined;
  /** The policy target the answer came from (its per-subset figures take the latency). */
  target: SplitTarget | undefined;
  /** The mesh's reason, when the mesh answered (or relayed the peer's). */
  reason: string | undefined;
  /** The upstream's breaker whose request slot this exchange holds (released when it ends). */
  breaker: CircuitBreaker | undefined;
  /** Attempts made (failover and retries included); 0 when none was. */
  attempts = 0;
  /** What resilience did, for the access log line (one flag per cause, as Envoy's response flags). */
  flags: ResilienceFlag[] | undefined;
  /** Set only when access logging was on as the request came in. */
  traceparent: string | undefined;
  bytesOut = 0;

  constructor(startedAt: number, body: ReplayBody | undefined) {
    this.startedAt = startedAt;
    this.body = body;
  }
}

const EXCHANGE = Symbol('meshctl.exchange');
type Carrier = ServerResponse & { [EXCHANGE]?: Exchange; [FORWARDER]?: HttpForwarder };
const FORWARDER = Symbol('meshctl.forwarder');

/** res 'close': the exchange is over, answered or not. An unfinished one aborts its attempt. */
function onResponseClose(this: Carrier): void {
  const ex = this[EXCHANGE];
  const fw = this[FORWARDER];
  if (ex === undefined || fw === undefined) return;
  if (!this.writableFinished) ex.signal.abort();
  fw.finished(ex, this);
}

function timer(ms: number, f: () => void): () => void {
  const t = setTimeout(f, ms);
  return () => clearTimeout(t);
}

export class HttpForwarder {
  /** Fed by the listener with accepted sockets; never listens itself. */
  readonly server: Server;
  /** The upstream's figures (owned by the listener, which outlives a cluster). */
  readonly traffic: Traffic;
  draining = false;
  /** Retries, budget refusals, timeouts of this upstream. */
  readonly figures = new ResilienceFigures();
  readonly #errors: ReasonCounter;
  readonly #log: ThrottledLog;
  readonly #ctx: OutboundContext;
  readonly #deps: PipelineDeps;
  readonly #upgrade: UpgradeTunnel;
  #cluster!: Cluster;
  #routes!: RouteTable;
  /** The routes of the upstream's traffic policy, when it has one (else the cluster's default route). */
  #policyRoutes: RouteTable | undefined;

  constructor(
    cluster: Cluster,
    traffic: Traffic,
    errors: ReasonCounter,
    log: ThrottledLog,
    ctx: OutboundContext,
    random: Random = Math.random,
  ) {
    this.cluster = cluster;
    this.traffic = traffic;
    this.#errors = errors;
    this.#log = log;
    this.#ctx = ctx;
    this.#upgrade = new UpgradeTunnel(traffic, errors, log, ctx, random);
    this.server = fedServer(LISTENER_KEEP_ALIVE_MS, this.#onRequest, (req, socket, head) =>
      this.#upgrade.handle(this.#cluster, this.#routes, req, socket, head),
    );
    this.server.on('clientError', this.#onClientError);
    this.#deps = {
      // The target's cluster: under a traffic policy it may be another service than the upstream's.
      send: (ep, request, body, signal, cluster) => cluster.clientFor(ep).send(request, body, signal),
      random,
      now: () => performance.now(),
      started: this.#started,
      abandoned: this.#abandoned,
      timer,
      ejected: this.#ejected,
    };
  }

  get cluster(): Cluster {
    return this.#cluster;
  }

  /** A push replaced the cluster (or its balancer): new requests take the new one (and its default route). */
  set cluster(c: Cluster) {
    if (
      c === this.#cluster &&
      (this.#policyRoutes !== undefined || c.balancer === this.#routes.routes[0]?.splits[0]?.balancer)
    )
      return;
    this.#cluster = c;
    this.#routes = this.#policyRoutes ?? defaultRoutes(c);
  }

  /**
   * The upstream's traffic policy (./policy.ts) as a route table, or undefined for none: the
   * cluster's default route, today's behaviour. Set by the listener on every push; requests
   * already in the pipeline finish on the table they started with.
   */
  set policyRoutes(t: RouteTable | undefined) {
    this.#policyRoutes = t;
    this.#routes = t ?? defaultRoutes(this.#cluster);
  }

  handle(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const withBody = hasBody(req);
    const ex = new Exchange(performance.now(), withBody ? new ReplayBody(req) : undefined);
    (res as Carrier)[EXCHANGE] = ex;
    (res as Carrier)[FORWARDER] = this;
    this.traffic.requests += 1;
    const h = req.headers;
    stripRequestHopByHop(h, false);
    // The body's framing is this hop's: the client frames it again (chunked when no length).
    if (h['transfer-encoding'] !== undefined) delete h['transfer-encoding'];
    setForwarded(req, 'http');
    if (this.#ctx.accessLog.on) ex.traceparent = trace(req);
    res.on('close', onResponseClose);
    const breaker = this.#cluster.breaker;
    if (!breaker.tryRequest()) {
      // max_concurrent_requests in flight already: refused at once, never queued.
      flag(ex, 'circuit-open');
      this.#meshError(res, ex, 'circuit-open', `${this.#cluster.service} ${breaker.detail('max-requests')}`);
      return;
    }
    ex.breaker = breaker;
    const request: OutboundRequest & RouteRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: h,
      source: req.socket.remoteAddress,
    };
    runPipeline({ request, body: ex.body, routes: this.#routes, signal: ex.signal }, this.#deps).then(
      (r) => this.#answer(ex, res, r),
      (err: unknown) => {
        // A bug, not an outcome: the app still gets an answer, and the log says what happened.
        this.#log.warn(`pipeline:${this.#cluster.service}`, { err }, 'outbound: the pipeline failed');
        this.#meshError(res, ex, 'upstream-reset', this.#cluster.service);
      },
    );
  };

  readonly #ejected = (ep: Endpoint, c: Cluster): void => {
    const st = ep.outlier;
    // Not throttled away: one line per ejection (the key names it), rare by construction.
    this.#log.warn(
      `eject:${ep.id}:${c.outlier.total}`,
      {
        upstream: c.service,
        endpoint: ep.id,
        ejections: st.ejections,
        forMs: Math.round(st.ejectedUntil - performance.now()),
        ejectedNow: c.outlier.ejectedCount,
      },
      'outbound: endpoint ejected as an outlier (consecutive failures); it comes back by itself',
    );
  };

  readonly #started = (a: Attempt): void => {
    a.endpoint.inFlight += 1;
    a.endpoint.traffic.requests += 1;
    if (a.cause === 'retry') this.figures.retries += 1;
  };

  /** An attempt that is not relayed: its figures on its endpoint, and a log line for a failover. */
  readonly #abandoned = (a: Attempt): void => {
    const ep = a.endpoint;
    ep.inFlight -= 1;
    a.end();
    const o = a.outcome!;
    switch (o.kind) {
      case 'connect-failure':
        ep.traffic.meshError('connect-failure');
        this.#log.warn(
          `connect:${ep.id}:${o.error.reason}`,
          { upstream: this.#cluster.service, endpoint: ep.id, reason: o.error.reason },
          'outbound: endpoint unreachable, trying the next one',
        );
        break;
      case 'response':
        if (!failoverSafe(o)) {
          // Retried: the endpoint's answer counts on the endpoint (not on the upstream, which
          // counts only what the app got).
          if (o.peerKind === undefined) ep.traffic.response(o.status);
          else ep.traffic.meshError(o.peerKind, o.status);
          break;
        }
        ep.traffic.meshError(o.peerKind ?? 'other', o.status);
        this.#log.warn(
          `app-unavailable:${ep.id}`,
          { upstream: this.#cluster.service, endpoint: ep.id },
          "outbound: the endpoint's app is unavailable, trying the next one",
        );
        break;
      case 'reset':
        if (o.stale && a.number === 1) {
          // A pooled connection the far side closed as we reused it: the request never arrived,
          // and this attempt does not count.
          ep.traffic.requests -= 1;
          return;
        }
        ep.traffic.meshError('upstream-reset', 502);
        this.#log.warn(
          `reset:${this.#cluster.service}`,
          { upstream: this.#cluster.service, endpoint: ep.id, code: o.code },
          'outbound: upstream dropped the request',
        );
        break;
      case 'timeout':
        this.figures.timeouts += 1;
        ep.traffic.meshError('request-timeout', 504);
        this.#log.warn(
          `timeout:${ep.id}`,
          { upstream: this.#cluster.service, endpoint: ep.id, perTry: o.perTry },
          'outbound: the endpoint did not answer in time',
        );
        break;
      case 'aborted':
        break;
    }
    ep.traffic.latencyMs(performance.now() - a.startedAt);
  };

  #answer(ex: Exchange, res: ServerResponse, r: PipelineResult): void {
    if (r.kind === 'gone') {
      if (r.attempt !== undefined) this.#abandonedGone(r.attempt);
      return;
    }
    if (r.retryDenied === 'budget') this.figures.retryBudgetExhausted += 1;
    resultFlags(ex, r);
    if (r.kind === 'answer') {
      if (r.attempt !== undefined && !res.headersSent) res.setHeader(ATTEMPTS_HEADER, r.attempt.number);
      if (r.target?.traffic !== undefined) {
        ex.target = r.target;
        r.target.traffic.requests += 1;
        r.target.traffic.meshError(r.reason, REASONS[r.reason].status);
      }
      this.#meshError(res, ex, r.reason, r.detail ?? r.service);
      return;
    }
    const { response, attempt, target } = r;
    if (target.traffic !== undefined) {
      ex.target = target;
      target.traffic.requests += 1;
    }
    ex.body?.release();
    const ep = attempt.endpoint;
    if (res.destroyed) {
      // The app left as the answer came: counted, read and dropped.
      response.body.discard();
      this.#count(ep, response.status, response.peerKind, target);
      this.#abandonedGone(attempt);
      return;
    }
    ex.final = attempt;
    const h = response.headers;
    fixResponseHopByHop(h, res.shouldKeepAlive && !this.draining, KEEP_ALIVE_SEC);
    if (h['transfer-encoding'] !== undefined) delete h['transfer-encoding'];
    h[ATTEMPTS_HEADER] = String(attempt.number);
    // The budget or the retry limit kept a retry from being made: the failed answer says so.
    if (r.retryDenied !== undefined && response.peerReason === undefined) {
      const c = r.target.cluster;
      const reason =
        r.retryDenied === 'budget'
          ? meshReason('retry-budget-exhausted', c.service)
          : meshReason('circuit-open', `${c.service} ${c.breaker.detail('max-retries')}`);
      h[REASON_HEADER] = reason;
      ex.reason = reason;
      this.#errors.add(reason);
    }
    // The traffic policy's response header changes: the route's, then the split target's.
    r.route.responseHeaders?.(h);
    target.responseHeaders?.(h);
    try {
      res.writeHead(response.status, response.statusMessage, h);
    } catch {
      response.body.discard();
      ep.traffic.meshError('upstream-bad-response', 502);
      this.#log.warn(
        `bad-response:${this.#cluster.service}`,
        { upstream: this.#cluster.service, endpoint: ep.id },
        "outbound: the endpoint's response headers cannot be relayed",
      );
      target.traffic?.meshError('upstream-bad-response', 502);
      this.#meshError(res, ex, 'upstream-bad-response', target.name ?? target.cluster.service);
      return;
    }
    if (response.peerReason !== undefined) ex.reason = response.peerReason;
    this.#count(ep, response.status, response.peerKind, target);
    response.body.relay(res, (err) => {
      ex.bytesOut = (response.body as { bytes?: number }).bytes ?? 0;
      if (err === undefined) return;
      // The endpoint's response was cut half-way: the app's cannot end well either.
      res.destroy();
      if (ex.signal.cause === 'request-timeout') {
        this.figures.timeouts += 1;
        flag(ex, 'timeout');
        this.#log.warn(
          `timeout-relay:${this.#cluster.service}`,
          { upstream: this.#cluster.service, endpoint: ep.id },
          'outbound: the request timeout passed while the response was relayed; it is cut',
        );
      }
    });
  }

  /** The app left while an attempt was in flight: the attempt ends, counted on nobody's answer. */
  #abandonedGone(a: Attempt): void {
    a.endpoint.inFlight -= 1;
    a.end();
    a.endpoint.traffic.latencyMs(performance.now() - a.startedAt);
  }

  /** Counts the final answer on the upstream, on the endpoint that gave it and on its policy target. */
  #count(ep: Endpoint, status: number, kind: MeshErrorKind | undefined, target: SplitTarget): void {
    const t = target.traffic;
    if (kind === undefined) {
      this.traffic.response(status);
      ep.traffic.response(status);
      t?.response(status);
    } else {
      this.traffic.meshError(kind, status);
      ep.traffic.meshError(kind, status);
      t?.meshError(kind, status);
    }
  }

  #meshError(res: ServerResponse, ex: Exchange, kind: ReasonKind, detail: string): void {
    const reason = meshReason(kind, detail);
    this.#errors.add(reason);
    this.traffic.meshError(kind, REASONS[kind].status);
    ex.reason = reason;
    ex.body?.release();
    writeMeshAnswer(res, REASONS[kind].status, reason, this.draining);
  }

  /** res 'close': latency on the upstream and on the endpoint of the relayed attempt, and the access log line. */
  finished(ex: Exchange, res: ServerResponse): void {
    ex.signal.clearDeadline();
    if (ex.breaker !== undefined) {
      ex.breaker.endRequest();
      ex.breaker = undefined;
    }
    const now = performance.now();
    const ms = now - ex.startedAt;
    this.traffic.latencyMs(ms);
    ex.target?.traffic?.latencyMs(ms);
    const a = ex.final;
    if (a !== undefined) {
      ex.final = undefined;
      a.endpoint.inFlight -= 1;
      a.end();
      a.endpoint.traffic.latencyMs(now - a.startedAt);
    }
    ex.body?.release();
    if (ex.traceparent !== undefined) this.#logLine(ex, res, a?.endpoint);
  }

  #logLine(ex: Exchange, res: ServerResponse, ep: Endpoint | undefined): void {
    const req = res.req;
    this.#ctx.accessLog.write({
      direction: 'outbound',
      protocol: 'http',
      source: this.#ctx.source,
      destination: this.#cluster.service,
      method: req.method ?? '',
      path: pathOf(req.url),
      status: res.headersSent ? res.statusCode : null,
      durationMs: roundMs(performance.now() - ex.startedAt),
      bytesIn: ex.body?.bytes ?? 0,
      bytesOut: ex.bytesOut,
      endpoint: ep?.id,
      reason: ex.reason,
      ...(ex.attempts > 0 ? { attempts: ex.attempts } : {}),
      ...(ex.flags ? { flags: ex.flags } : {}),
      traceparent: ex.traceparent,
    });
  }

  /** Node's parser refused a request (fedServer answers it): say so once in a while, per kind. */
  readonly #onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    socket.on('error', ignore);
    const kind = clientErrorReason(err);
    this.#log.warn(
      `client-error:${kind}:${this.#cluster.service}`,
      { upstream: this.#cluster.service, reason: kind, code: err.code },
      'outbound: refused a request from the app',
    );
  };

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
