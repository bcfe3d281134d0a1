/**
 * WebSocket (`Upgrade`) requests: a tunnel, off the per-request path. The request takes the
 * upstream's routes like any request — route (first match) → split → the target's balancer, the
 * route's prefix rewrite and request header changes — so a router or splitter sends a WebSocket
 * where it sends the same request without `Upgrade`. The request head then goes out on a
 * connection of its own to an endpoint of the target (the L4 attempt stage, with its failover on
 * connect failures), the endpoint's response head is read only far enough to count it (status,
 * the peer's `x-meshctl-reason`), and from then on the two sockets are a byte pipe both ways —
 * the same pipe as L4. Nothing here parses WebSocket frames, and no HTTP library is needed:
 * the connection leaves HTTP at the 101, so response header changes do not apply to it.
 * Retries, timeouts and outlier ejection are the request path's; a tunnel has failover only.
 *
 * An upgrade is counted and timed to its answer, not over the WebSocket's life, so that
 * long-lived sockets do not swamp request latency; it holds its endpoint (in flight) until closed.
 * Under a traffic policy it counts on its target's (per-subset) figures too.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { meshReason, peerReasonKind, REASONS, type MeshErrorKind, type ReasonKind } from '../../../errors/reasons.js';
import { pathOf, roundMs } from '../../access-log.js';
import { writeRawMeshAnswer } from '../../http/answer.js';
import { isProvenOn } from '../../http/mesh-proof.js';
import { ignore } from '../../../util/async.js';
import { stripRequestHopByHop } from '../../http/headers.js';
import type { ThrottledLog } from '../../log-throttle.js';
import { pipeSockets } from '../../pipe.js';
import type { ReasonCounter } from '../../stats.js';
import type { Traffic } from '../../traffic.js';
import type { Random } from '../balancers.js';
import type { Cluster } from '../cluster.js';
import { connectEndpoint } from '../connect.js';
import type { OutboundContext } from '../context.js';
import type { Endpoint } from '../endpoint.js';
import { setForwarded, trace } from './request.js';
import { pickTarget, route, type RouteRequest, type RouteTable } from './route.js';
import type { SplitTarget } from './split.js';

/** The endpoint's response head must fit in this much, or the upgrade is refused as a bad response. */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
const REASON_LINE = /\r\nx-meshctl-reason:[ \t]*([^\r\n]*)/i;
const PROOF_LINE = /\r\nx-meshctl-proof:[ \t]*([^\r\n]*)/i;

interface Tunnel {
  /** The target's cluster once routed (before: the upstream's, for the refusals that come first). */
  cluster: Cluster;
  /** What its reasons name: the target (`api/v2`) under a traffic policy, else the service. */
  service: string;
  /** The policy target, whose per-subset figures count the upgrade. */
  target: SplitTarget | undefined;
  readonly req: IncomingMessage;
  readonly socket: Socket;
  readonly startedAt: number;
  readonly traceparent: string | undefined;
  endpoint: Endpoint | undefined;
  reason: string | undefined;
}

export class UpgradeTunnel {
  readonly #traffic: Traffic;
  readonly #errors: ReasonCounter;
  readonly #log: ThrottledLog;
  readonly #ctx: OutboundContext;
  readonly #random: Random;

  constructor(traffic: Traffic, errors: ReasonCounter, log: ThrottledLog, ctx: OutboundContext, random: Random) {
    this.#traffic = traffic;
    this.#errors = errors;
    this.#log = log;
    this.#ctx = ctx;
    this.#random = random;
  }

  /** `routes`: the upstream's (its policy's, or the default route to `cluster`). */
  handle(cluster: Cluster, routes: RouteTable, req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', ignore);
    socket.setNoDelay(true);
    this.#traffic.requests += 1;
    const t: Tunnel = {
      cluster,
      service: cluster.service,
      target: undefined,
      req,
      socket,
      startedAt: performance.now(),
      traceparent: this.#ctx.accessLog.on ? trace(req) : undefined,
      endpoint: undefined,
      reason: undefined,
    };
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
      this.#refuse(t, 'unsupported-upgrade', undefined);
      return;
    }
    stripRequestHopByHop(req.headers, true);
    setForwarded(req, 'ws');
    // Routed as the pipeline routes a request (pipeline.ts): same stages, same order.
    const request: RouteRequest = {
      method: req.method,
      path: req.url ?? '/',
      headers: req.headers,
      source: socket.remoteAddress,
    };
    const r = route(routes, request);
    const target = r && pickTarget(r, request, this.#random);
    if (r === undefined || target === undefined) {
      this.#refuse(t, 'no-healthy-endpoints', '');
      return;
    }
    const to = target.cluster;
    t.cluster = to;
    t.service = target.name ?? to.service;
    if (target.traffic !== undefined) {
      t.target = target;
      target.traffic.requests += 1;
    }
    if (r.rewrite !== undefined) req.url = r.rewrite(request.path);
    r.requestHeaders?.(req.headers);
    target.requestHeaders?.(req.headers);
    const hash = target.hash === undefined ? undefined : target.hash(request);
    const balancer = target.balancer;
    connectEndpoint(
      to,
      () => !socket.destroyed,
      (c) => {
        if (!c.ok) {
          if (c.kind === undefined) socket.destroy();
          else if (c.kind === 'no-healthy-endpoints' && target.name !== undefined)
            // `no-healthy-endpoints api/v2 (route 2 of service-router api)`, as for a request.
            this.#refuse(t, c.kind, `${t.service} (${r.name})`);
          else this.#refuse(t, c.kind, t.service);
          return;
        }
        this.#open(t, c.socket, c.endpoint, head);
      },
      (tried) => balancer.pick(to.endpoints, tried, hash),
    );
  }

  #open(t: Tunnel, up: TLSSocket, endpoint: Endpoint, head: Buffer): void {
    t.endpoint = endpoint;
    endpoint.inFlight += 1;
    up.once('close', () => {
      endpoint.inFlight -= 1;
    });
    up.write(requestHead(t.req));
    if (head.length > 0) up.write(head);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const early = (): void => {
      if (settled) return;
      settled = true;
      up.off('data', onData);
      up.destroy();
      endpoint.traffic.meshError('upstream-reset', 502);
      this.#refuse(t, 'upstream-reset', t.service);
    };
    const onData = (d: Buffer): void => {
      chunks.push(d);
      size += d.length;
      const all = chunks.length === 1 ? d : Buffer.concat(chunks);
      const end = all.indexOf(HEAD_END);
      if (end < 0) {
        if (size > MAX_RESPONSE_HEAD_BYTES) {
          settled = true;
          up.off('close', early);
          up.off('error', early);
          up.off('data', onData);
          up.destroy();
          endpoint.traffic.meshError('upstream-bad-response', 502);
          this.#refuse(t, 'upstream-bad-response', t.service);
        } else if (chunks.length > 1) {
          chunks.length = 0;
          chunks.push(all);
        }
        return;
      }
      settled = true;
      up.off('data', onData);
      up.off('close', early);
      up.off('error', early);
      const headText = all.toString('latin1', 0, end + 2);
      const status = Number(STATUS_LINE.exec(headText)?.[1] ?? 0);
      // The peer's reason counts only with its proof: a piped inbound relays the app's head as it is.
      const said = REASON_LINE.exec(headText)?.[1];
      const proof = PROOF_LINE.exec(headText)?.[1];
      const reason = said !== undefined && isProvenOn(proof?.trim(), up) ? said : undefined;
      t.reason = reason;
      this.#answered(t, status, reason === undefined ? undefined : peerReasonKind(reason));
      if (t.socket.destroyed) {
        up.destroy();
        return;
      }
      t.socket.write(proof === undefined && said === reason ? all : withoutMeshLines(all, headText, end, reason));
      pipeSockets(t.socket, up);
    };
    up.on('data', onData);
    up.once('close', early);
    up.on('error', early);
  }

  /** The mesh answers the upgrade itself, and closes. */
  #refuse(t: Tunnel, kind: ReasonKind, service: string | undefined): void {
    const reason = meshReason(kind, service);
    this.#errors.add(reason);
    t.reason = reason;
    const status = REASONS[kind].status;
    this.#answered(t, status, kind);
    writeRawMeshAnswer(t.socket, status, reason);
  }

  #answered(t: Tunnel, status: number, kind: MeshErrorKind | undefined): void {
    const now = performance.now();
    const ep = t.endpoint;
    const sub = t.target?.traffic;
    if (kind === undefined) {
      this.#traffic.response(status);
      ep?.traffic.response(status);
      sub?.response(status);
    } else {
      this.#traffic.meshError(kind, status);
      sub?.meshError(kind, status);
      // The mesh's own refusals before an endpoint answered are not the endpoint's.
      if (ep !== undefined && REASONS[kind as ReasonKind]?.sender !== 'outbound') ep.traffic.meshError(kind, status);
    }
    this.#traffic.latencyMs(now - t.startedAt);
    ep?.traffic.latencyMs(now - t.startedAt);
    sub?.latencyMs(now - t.startedAt);
    if (kind === 'upstream-reset' || kind === 'upstream-bad-response')
      this.#log.warn(
        `upgrade:${kind}:${t.cluster.service}`,
        { upstream: t.cluster.service, endpoint: ep?.id },
        'outbound: the endpoint did not answer the upgrade',
      );
    if (t.traceparent !== undefined) {
      this.#ctx.accessLog.write({
        direction: 'outbound',
        protocol: 'http',
        source: this.#ctx.source,
        destination: t.cluster.service,
        method: t.req.method ?? '',
        path: pathOf(t.req.url),
        status,
        durationMs: roundMs(now - t.startedAt),
        bytesIn: 0,
        bytesOut: 0,
        endpoint: ep?.id,
        reason: t.reason,
        traceparent: t.traceparent,
      });
    }
  }
}

/**
 * The endpoint's response head as the app gets it, as for requests (outcome.ts peerReasonOf):
 * without the hop's proof, and without a reason the peer did not prove (the service's own).
 */
function withoutMeshLines(all: Buffer, headText: string, end: number, proven: string | undefined): Buffer {
  let head = headText.replace(PROOF_LINE, '');
  if (proven === undefined) head = head.replace(REASON_LINE, '');
  return Buffer.concat([Buffer.from(head, 'latin1'), all.subarray(end + 2)]);
}

/** The request head as it goes to the endpoint (Node's parser has checked every header). */
function requestHead(req: IncomingMessage): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) head += `${name}: ${v}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}
