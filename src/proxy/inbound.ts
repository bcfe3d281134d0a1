/**
 * The inbound listener: the service's mesh port. Every connection must be TLS 1.3 with a
 * client certificate from the mesh roots (checked by TLS itself: rejectUnauthorized), then
 * carry exactly one service SPIFFE ID in our trust domain (checked here), then be allowed
 * by the intentions of the snapshot current at that moment.
 *
 * An allowed connection to an http service goes to InboundHttp, which forwards each request
 * to the app (and counts it); to a tcp service it becomes a byte pipe to the app (the L4 fast
 * path), counted as one request lasting as long as the connection.
 *
 * A denied http connection is answered `403` with `x-meshctl-reason` by a small local
 * responder (the caller's outbound proxy passes it back); a denied tcp one is closed.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { decideIntention } from '../api/intentions.js';
import { MeshError } from '../errors/index.js';
import { meshReason, REASONS, type ReasonKind } from '../errors/reasons.js';
import type { Logger } from '../util/log.js';
import { pathOf, roundMs, type AccessLog } from './access-log.js';
import { writeMeshAnswer } from './http/answer.js';
import { IdentityCache } from './identity-cache.js';
import { InboundHttp } from './inbound-http.js';
import { ThrottledLog } from './log-throttle.js';
import { pipeSockets } from './pipe.js';
import { RevokedSerials } from './revoked.js';
import type { ProxySnapshot } from './snapshot.js';
import { ConnectionCounter, HttpCounter, ReasonCounter } from './stats.js';
import { secureContextOptions, tlsChanged } from './tls-material.js';
import { serverHandshakeReason } from './tls-reasons.js';
import { ensureTraceparent } from './trace.js';
import { Traffic } from './traffic.js';

/** A refused connection's local answer, kept on the socket for the small HTTP responder. */
const LOCAL_ANSWER = Symbol('meshctl.localAnswer');
interface LocalAnswer {
  readonly status: number;
  readonly reason: string;
  readonly kind: ReasonKind;
  /** The verified caller, for the access log. */
  readonly peer: string;
  readonly service: string;
}
type AnsweredSocket = Socket & { [LOCAL_ANSWER]?: LocalAnswer };

/** How long a refused http connection may sit idle before it is dropped. */
const LOCAL_ANSWER_IDLE_MS = 10_000;
/** A client certificate on the snapshot's revocation list. */
const REVOKED_CERTIFICATE = 'revoked-certificate';
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

interface AcceptedConnection {
  readonly peer: string;
  readonly socket: TLSSocket;
  /** tcp: the pipe's other end; http connections reach the app through InboundHttp's pool. */
  readonly app: Socket | undefined;
}

/** Bound but not yet serving: made during a snapshot push, before anything changes. */
export interface PreparedInbound {
  commit(): void;
  rollback(): Promise<void>;
}

function ignore(): void {}

export class Inbound {
  readonly #log: Logger;
  readonly #throttled: ThrottledLog;
  #server: TlsServer | undefined;
  /** The address and port as the snapshot asked (port 0 = any), to tell whether a push moves the listener. */
  #requested: { address: string; port: number } | undefined;
  #snapshot: ProxySnapshot | undefined;
  readonly #accepted = new Set<AcceptedConnection>();
  readonly #raw = new Set<Socket>();
  readonly #handshakeTimeoutMs: number;
  readonly #local: HttpServer;
  readonly #http: InboundHttp;
  readonly #accessLog: AccessLog;
  /** Callers' identities by certificate, for the current trust domain. */
  #identities: IdentityCache | undefined;
  /** Leaves of removed nodes (snapshot.revokedSerials): refused though TLS and the identity pass. */
  readonly #revokedSerials = new RevokedSerials();

  /** Mesh-side connections that passed the handshake. */
  readonly connections = new ConnectionCounter();
  /** Connections refused, by reason (handshake, identity, intention). */
  readonly refusals = new ReasonCounter();
  /** Refused handshakes and peer identities, by reason: the contract's `tlsFailures` (the registry takes at most 64). */
  readonly tlsFailures = new ReasonCounter(32);
  /** Open connections closed because a newer snapshot denies them (intention, revoked certificate). */
  readonly revoked = new ReasonCounter();
  /** The mesh's own failures (app unavailable, ...), by full reason. */
  readonly errors = new ReasonCounter();
  /** Requests answered by the local responder (403 deny). */
  readonly localResponses = new HttpCounter();
  /** Requests (http) or connections (tcp) into the service, and how they ended. */
  readonly traffic = new Traffic(this.connections);

  constructor(log: Logger, accessLog: AccessLog, handshakeTimeoutMs = DEFAULT_HANDSHAKE_TIMEOUT_MS) {
    this.#log = log;
    this.#accessLog = accessLog;
    this.#handshakeTimeoutMs = handshakeTimeoutMs;
    this.#throttled = new ThrottledLog(log);
    this.#local = createHttpServer(
      { requestTimeout: LOCAL_ANSWER_IDLE_MS, headersTimeout: LOCAL_ANSWER_IDLE_MS },
      this.#answerLocally,
    );
    this.#local.timeout = LOCAL_ANSWER_IDLE_MS;
    // Fed sockets only: connection tracking (closeIdleConnections, timeouts) starts at 'listening'.
    this.#local.emit('listening');
    this.#http = new InboundHttp({ traffic: this.traffic, errors: this.errors, log: this.#throttled, accessLog });
  }

  /** Where the mesh port is bound, once it is. */
  address(): AddressInfo | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /**
   * Gets ready to serve `next`: binds a new server when the mesh address changes (or on the
   * first snapshot). Nothing serving changes until commit(); rollback() undoes the bind.
   */
  async prepare(next: ProxySnapshot): Promise<PreparedInbound> {
    const { address, port } = next.service.inbound;
    const moves = !this.#server || !this.#staysAt(address, port);
    let fresh: TlsServer | undefined;
    if (moves) fresh = await this.#listen(next, address, port);
    return {
      commit: () => this.#commit(next, fresh),
      rollback: async () => {
        if (fresh) await closeServer(fresh);
      },
    };
  }

  /**
   * Whether the listener already serves `address:port`: the same request as before, or the
   * port the OS picked for an earlier port 0 now named explicitly.
   */
  #staysAt(address: string, port: number): boolean {
    const req = this.#requested;
    if (!req || req.address !== address) return false;
    return req.port === port || this.address()?.port === port;
  }

  #commit(next: ProxySnapshot, fresh: TlsServer | undefined): void {
    const prev = this.#snapshot;
    this.#snapshot = next;
    this.#http.configure(next);
    if (this.#identities?.expect.trustDomain !== next.trustDomain)
      this.#identities = new IdentityCache({ trustDomain: next.trustDomain, kind: 'svc' });
    if (fresh) {
      const old = this.#server;
      this.#server = fresh;
      this.#requested = { address: next.service.inbound.address, port: next.service.inbound.port };
      // Stop accepting on the old address; connections already accepted are pipes and stay.
      if (old) old.close(ignore);
    } else if (prev && tlsChanged(prev.tls, next.tls)) {
      // New handshakes present the new certificate and trust the new roots; open connections keep theirs.
      this.#server!.setSecureContext(secureContextOptions(next.tls));
    }
    const revokedChanged = this.#revokedSerials.update(next.revokedSerials);
    if (prev && (revokedChanged || intentionsChanged(prev, next))) this.#recheckAccepted(next);
  }

  async #listen(snap: ProxySnapshot, address: string, port: number): Promise<TlsServer> {
    const server = createTlsServer({
      ...secureContextOptions(snap.tls),
      requestCert: true,
      rejectUnauthorized: true,
      allowHalfOpen: true,
      handshakeTimeout: this.#handshakeTimeoutMs,
    });
    server.on('tlsClientError', this.#onTlsClientError);
    server.on('secureConnection', this.#onSecureConnection);
    server.on('connection', this.#onRawConnection);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        reject(
          new MeshError(
            'MESH_ERR_UNAVAILABLE',
            `inbound: cannot listen on ${address}:${port}: ${e.code ?? e.message}`,
            {
              hint:
                e.code === 'EADDRINUSE'
                  ? 'Another process holds the mesh port; pick another meshPort for the service or stop that process.'
                  : 'Check the inbound address.',
            },
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host: address, port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // After listening, an accept error (EMFILE, ...) is logged; the server keeps running.
    server.on('error', (e) => this.#log.error({ err: e }, 'inbound listener error'));
    return server;
  }

  /** Every TCP connection, handshaken or not, so that close() can end them all. */
  readonly #onRawConnection = (raw: Socket): void => {
    this.#raw.add(raw);
    raw.once('close', () => this.#raw.delete(raw));
  };

  readonly #onTlsClientError = (err: Error, socket: TLSSocket): void => {
    const reason = serverHandshakeReason(err, socket.authorizationError);
    this.tlsFailures.add(reason);
    this.#refused(reason, socket.remoteAddress);
    // Node leaves some failed handshakes open (a handshake timeout, for one): end them here.
    socket.destroy();
  };

  readonly #onSecureConnection = (socket: TLSSocket): void => {
    socket.setNoDelay(true);
    socket.on('error', ignore);
    const snap = this.#snapshot;
    if (!snap) {
      socket.destroy();
      return;
    }
    // The native certificate object: its fingerprint needs no parsing in JS.
    const cert = socket.getPeerX509Certificate();
    const id = this.#identities!.check(cert);
    if (!id.ok || this.#revokedSerials.has(cert)) {
      const reason = id.ok ? REVOKED_CERTIFICATE : id.reason;
      this.tlsFailures.add(reason);
      this.#refused(reason, socket.remoteAddress);
      socket.destroy();
      return;
    }
    const me = snap.service.name;
    const decision = decideIntention(snap.intentions, id.name, me, snap.defaultIntention);
    if (decision.action === 'deny') {
      const reason = meshReason('intention-deny', `${id.name}->${me}`);
      this.#refused(reason, socket.remoteAddress);
      if (snap.service.protocol === 'http') {
        this.#answer(socket, { status: 403, reason, kind: 'intention-deny', peer: id.name, service: me });
      } else {
        this.traffic.requests += 1;
        this.traffic.meshError('intention-deny');
        this.traffic.latencyMs(0);
        if (this.#accessLog.on)
          this.#logTcp(id.name, me, `${socket.remoteAddress}:${socket.remotePort}`, undefined, 0, reason);
        socket.destroy();
      }
      return;
    }
    if (snap.service.protocol === 'http') this.#toHttp(socket, id.name);
    else this.#toApp(socket, id.name, snap);
  };

  /** http: requests on this connection go through InboundHttp, one by one. */
  #toHttp(socket: TLSSocket, peer: string): void {
    this.connections.track(socket);
    const conn: AcceptedConnection = { peer, socket, app: undefined };
    this.#accepted.add(conn);
    socket.once('close', () => this.#accepted.delete(conn));
    this.#http.handle(socket, peer);
  }

  /** tcp: the connection becomes a byte pipe to the app. */
  #toApp(socket: TLSSocket, peer: string, snap: ProxySnapshot): void {
    this.connections.track(socket);
    this.traffic.requests += 1;
    const startedAt = performance.now();
    const { address, port } = snap.service.app;
    const me = snap.service.name;
    const app = netConnect({ host: address, port, allowHalfOpen: true });
    const conn: AcceptedConnection = { peer, socket, app };
    this.#accepted.add(conn);
    let piped = false;
    let failure: string | undefined;
    // Read now: a closed socket no longer knows its peer.
    const remote = this.#accessLog.on ? `${socket.remoteAddress}:${socket.remotePort}` : undefined;
    socket.once('close', () => {
      this.#accepted.delete(conn);
      // Once piped, the pipe decides (a clean close lets the app side flush).
      if (!piped) app.destroy();
      const ms = performance.now() - startedAt;
      this.traffic.latencyMs(ms);
      if (this.#accessLog.on) this.#logTcp(peer, me, remote, app, ms, failure);
    });
    const onAppError = (err: NodeJS.ErrnoException) => {
      const reason = meshReason('app-unavailable', me);
      failure = reason;
      this.errors.add(reason);
      this.traffic.meshError('app-unavailable');
      this.#throttled.warn(
        reason,
        { reason, app: `${address}:${port}`, code: err.code },
        'inbound: cannot reach the local service',
      );
      socket.destroy();
    };
    app.once('error', onAppError);
    app.once('connect', () => {
      app.off('error', onAppError);
      piped = true;
      pipeSockets(socket, app);
    });
  }

  /** One line per tcp connection: bytes as the app saw them (the mesh side is TLS). */
  #logTcp(
    peer: string,
    me: string,
    remote: string | undefined,
    app: Socket | undefined,
    ms: number,
    reason: string | undefined,
  ): void {
    this.#accessLog.write({
      direction: 'inbound',
      protocol: 'tcp',
      source: peer,
      destination: me,
      durationMs: roundMs(ms),
      bytesIn: app?.bytesWritten ?? 0,
      bytesOut: app?.bytesRead ?? 0,
      peer: remote,
      reason,
    });
  }

  /** Hands a refused http connection to the local responder, which answers every request on it and closes. */
  #answer(socket: TLSSocket, answer: LocalAnswer): void {
    (socket as AnsweredSocket)[LOCAL_ANSWER] = answer;
    if (!this.connections.open.has(socket)) this.connections.track(socket);
    this.#local.emit('connection', socket);
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
    this.localResponses.requests += 1;
    this.localResponses.response(answer.status);
    this.traffic.requests += 1;
    this.traffic.meshError(answer.kind, answer.status);
    // The caller's trace goes on in our line even though the request ends here.
    const traceparent = this.#accessLog.on ? ensureTraceparent(req.headers.traceparent) : undefined;
    writeMeshAnswer(res, answer.status, answer.reason, true);
    const ms = performance.now() - startedAt;
    this.traffic.latencyMs(ms);
    if (traceparent !== undefined) {
      this.#accessLog.write({
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

  #refused(reason: string, remote: string | undefined): void {
    this.refusals.add(reason);
    this.#throttled.info(`refused:${reason}`, { reason, remote }, 'inbound connection refused');
  }

  /**
   * A push changed the intentions or the revoked serials: connections the new rules deny, or
   * whose client certificate is now revoked, are closed now, not at their next reconnect.
   */
  #recheckAccepted(next: ProxySnapshot): void {
    const me = next.service.name;
    for (const conn of this.#accepted) {
      if (this.#revokedSerials.has(conn.socket.getPeerX509Certificate())) {
        this.revoked.add(REVOKED_CERTIFICATE);
        this.#log.info(
          { reason: REVOKED_CERTIFICATE, peer: conn.peer },
          'inbound connection closed: certificate revoked',
        );
        conn.socket.destroy();
        conn.app?.destroy();
        continue;
      }
      const d = decideIntention(next.intentions, conn.peer, me, next.defaultIntention);
      if (d.action === 'allow') continue;
      const reason = meshReason('intention-deny', `${conn.peer}->${me}`);
      this.revoked.add(reason);
      this.#log.info({ reason }, 'inbound connection closed: intention now denies it');
      conn.socket.destroy();
      conn.app?.destroy();
    }
  }

  /**
   * Stops accepting, lets open connections finish for up to `drainMs`, then cuts the rest.
   */
  async close(drainMs: number): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closing = server ? closeServer(server) : Promise.resolve();
    this.#local.closeIdleConnections();
    this.#http.closeIdle();
    const deadline = Date.now() + drainMs;
    while (this.connections.active > 0 && Date.now() < deadline) {
      this.#local.closeIdleConnections();
      this.#http.closeIdle();
      await sleep(50);
    }
    this.#http.closeAll();
    for (const s of this.connections.open) s.destroy();
    for (const c of this.#accepted) c.app?.destroy();
    for (const raw of this.#raw) raw.destroy();
    this.#local.close(ignore);
    await closing;
  }
}

function intentionsChanged(a: ProxySnapshot, b: ProxySnapshot): boolean {
  if (a.defaultIntention !== b.defaultIntention || a.service.name !== b.service.name || a.trustDomain !== b.trustDomain)
    return true;
  if (a.intentions.length !== b.intentions.length) return true;
  return a.intentions.some((x, i) => {
    const y = b.intentions[i]!;
    return x.source !== y.source || x.destination !== y.destination || x.action !== y.action;
  });
}

function closeServer(server: TlsServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
