/**
 * The inbound side: the service's mesh port. Every connection must be TLS 1.3 with a client
 * certificate from the mesh roots (listener.ts, with its limits), then carry exactly one
 * service SPIFFE ID in our trust domain and be allowed by the intentions of the snapshot
 * current at that moment (authorize.ts).
 *
 * An allowed connection becomes a byte pipe to the app (tcp.ts), unless the service is http and
 * a rule of the snapshot needs to see its requests (mode.ts: the access log, L7 permissions):
 * then it goes to InboundHttp (http.ts), which forwards each request to the app, deciding
 * each by the caller's L7 permissions when its intention has some (permissions.ts). A denied
 * caller of an http service is answered `403` with `x-meshctl-reason` (deny-responder.ts), and
 * so is an http caller whose app cannot be reached (`502 app-unavailable`); a denied tcp
 * connection is closed. A push that turns the mode to http closes the open pipes, so the rule
 * that needs HTTP applies from the callers' next connection on.
 */
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { REASONS } from '../../errors/reasons.js';
import { ignore, sleep } from '../../util/async.js';
import type { Logger } from '../../util/log.js';
import type { AccessLog } from '../access-log.js';
import { IdentityCache } from '../identity-cache.js';
import { ThrottledLog } from '../log-throttle.js';
import { REVOKED_CERTIFICATE, RevokedSerials } from '../revoked.js';
import type { ProxySnapshot } from '../snapshot.js';
import { ConnectionCounter, HttpCounter, ReasonCounter } from '../stats.js';
import { tlsChanged } from '../tls-material.js';
import { Traffic } from '../traffic.js';
import { authorize, intentionDenies, intentionsChanged } from './authorize.js';
import { DenyResponder } from './deny-responder.js';
import { InboundHttp } from './http.js';
import { DEFAULT_LISTENER_LIMITS, MeshListener, type ListenerLimits } from './listener.js';
import { inboundMode, type InboundMode } from './mode.js';
import { logConnection, pipeToApp } from './tcp.js';

export { DEFAULT_LISTENER_LIMITS, LIMIT_REASONS, type ListenerLimits } from './listener.js';
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = DEFAULT_LISTENER_LIMITS.handshakeTimeoutMs;

export interface InboundLimits extends ListenerLimits {
  /** An HTTP request head must be complete this long after its first byte. */
  readonly headersTimeoutMs?: number;
}

interface AcceptedConnection {
  readonly peer: string;
  readonly socket: TLSSocket;
  readonly mode: InboundMode;
  /** pipe: the pipe's other end; http connections reach the app through InboundHttp's pool. */
  readonly app: Socket | undefined;
}

/** Bound but not yet serving: made during a snapshot push, before anything changes. */
export interface PreparedInbound {
  commit(): void;
  rollback(): Promise<void>;
}

export class Inbound {
  readonly #log: Logger;
  readonly #throttled: ThrottledLog;
  readonly #limits: InboundLimits;
  #listener: MeshListener | undefined;
  /** The address and port as the snapshot asked (port 0 = any), to tell whether a push moves the listener. */
  #requested: { address: string; port: number } | undefined;
  #snapshot: ProxySnapshot | undefined;
  #mode: InboundMode = 'pipe';
  readonly #accepted = new Set<AcceptedConnection>();
  readonly #deny: DenyResponder;
  readonly #http: InboundHttp;
  readonly #accessLog: AccessLog;
  /** Callers' identities by certificate, for the current trust domain. */
  #identities: IdentityCache | undefined;
  /** Leaves of removed nodes (snapshot.revokedSerials): refused though TLS and the identity pass. */
  readonly #revokedSerials = new RevokedSerials();

  /** Mesh-side connections that passed the handshake. */
  readonly connections = new ConnectionCounter();
  /** Connections refused, by reason (limits, handshake, identity, intention). */
  readonly refusals = new ReasonCounter();
  /** Refused handshakes and peer identities, by reason: the contract's `tlsFailures` (the registry takes at most 64). */
  readonly tlsFailures = new ReasonCounter(32);
  /** Open connections closed because a newer snapshot denies them (intention, revoked certificate). */
  readonly revoked = new ReasonCounter();
  /** The mesh's own failures (app unavailable, ...), by full reason. */
  readonly errors = new ReasonCounter();
  /** Requests refused by L7 permissions, by full reason (the connection stays open). */
  readonly denials = new ReasonCounter();
  /** Requests answered by the local responder (403 deny). */
  readonly localResponses = new HttpCounter();
  /** Requests (http) or connections (tcp) into the service, and how they ended. */
  readonly traffic = new Traffic(this.connections);

  constructor(log: Logger, accessLog: AccessLog, limits: Partial<InboundLimits> = {}) {
    this.#log = log;
    this.#accessLog = accessLog;
    this.#limits = { ...DEFAULT_LISTENER_LIMITS, ...limits };
    this.#throttled = new ThrottledLog(log);
    this.#deny = new DenyResponder({ traffic: this.traffic, responses: this.localResponses, accessLog });
    this.#http = new InboundHttp({
      traffic: this.traffic,
      errors: this.errors,
      denials: this.denials,
      log: this.#throttled,
      accessLog,
      ...(limits.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: limits.headersTimeoutMs }),
    });
  }

  /** How allowed connections are served now (mode.ts); shown in `GET /stats`. */
  get mode(): InboundMode {
    return this.#mode;
  }

  /** Open connections served as byte pipes and through HTTP parsing. */
  connectionsByMode(): { pipe: number; http: number } {
    let pipe = 0;
    let http = 0;
    for (const c of this.#accepted) {
      if (c.mode === 'pipe') pipe += 1;
      else http += 1;
    }
    return { pipe, http };
  }

  /** Where the mesh port is bound, once it is. */
  address(): AddressInfo | undefined {
    const a = this.#listener?.server.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /** Connections in their TLS handshake now. */
  get pendingHandshakes(): number {
    return this.#listener?.pendingHandshakes ?? 0;
  }

  /**
   * Gets ready to serve `next`: binds a new listener when the mesh address changes (or on the
   * first snapshot). Nothing serving changes until commit(); rollback() undoes the bind.
   */
  async prepare(next: ProxySnapshot): Promise<PreparedInbound> {
    const { address, port } = next.service.inbound;
    const moves = !this.#listener || !this.#staysAt(address, port);
    let fresh: MeshListener | undefined;
    if (moves) fresh = await this.#listen(next, address, port);
    return {
      commit: () => this.#commit(next, fresh),
      rollback: async () => {
        if (fresh) {
          const closed = fresh.close();
          fresh.destroyAll();
          await closed;
        }
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

  #commit(next: ProxySnapshot, fresh: MeshListener | undefined): void {
    const prev = this.#snapshot;
    this.#snapshot = next;
    this.#http.configure(next);
    const mode = inboundMode(next);
    const modeChanged = mode !== this.#mode;
    this.#mode = mode;
    if (this.#identities?.expect.trustDomain !== next.trustDomain)
      this.#identities = new IdentityCache({ trustDomain: next.trustDomain, kind: 'svc' });
    if (fresh) {
      const old = this.#listener;
      this.#listener = fresh;
      this.#requested = { address: next.service.inbound.address, port: next.service.inbound.port };
      // Stop accepting on the old address; connections already accepted stay.
      if (old) void old.close();
    } else if (prev && tlsChanged(prev.tls, next.tls)) {
      this.#listener!.setSecureContext(next);
    }
    const revokedChanged = this.#revokedSerials.update(next.revokedSerials);
    if (prev && (revokedChanged || intentionsChanged(prev, next))) this.#recheckAccepted(next);
    if (modeChanged && mode === 'http') this.#closePipes();
  }

  /**
   * A rule now needs HTTP on this side (L7 permissions, the access log): a pipe cannot apply it,
   * so open pipes close and their callers reconnect, parsed. (Connections parsed already stay
   * when the mode goes back to pipe: parsing is correct for any snapshot, only slower.)
   */
  #closePipes(): void {
    let n = 0;
    for (const conn of this.#accepted) {
      if (conn.mode !== 'pipe' || conn.socket.destroyed) continue;
      n += 1;
      conn.socket.destroy();
      conn.app?.destroy();
    }
    if (n > 0) this.#log.info({ connections: n, mode: this.#mode }, 'inbound pipes closed: the mode is now http');
  }

  #listen(snap: ProxySnapshot, address: string, port: number): Promise<MeshListener> {
    return MeshListener.listen(
      snap,
      address,
      port,
      this.#limits,
      {
        secure: this.#onSecure,
        handshakeFailed: (reason, socket) => {
          this.tlsFailures.add(reason);
          this.#refused(reason, socket.remoteAddress);
        },
        overLimit: (reason, remote) => this.#refused(reason, remote),
      },
      (e) => this.#log.error({ err: e }, 'inbound listener error'),
    );
  }

  readonly #onSecure = (socket: TLSSocket): void => {
    socket.setNoDelay(true);
    socket.on('error', ignore);
    const snap = this.#snapshot;
    if (!snap) {
      socket.destroy();
      return;
    }
    // The native certificate object: its fingerprint needs no parsing in JS.
    const auth = authorize(
      socket.getPeerX509Certificate(),
      snap,
      this.#identities!,
      this.#revokedSerials,
      socket.isSessionReused(),
    );
    if (auth.ok) {
      this.connections.track(socket);
      if (this.#mode === 'http') this.#toHttp(socket, auth.peer);
      else this.#toApp(socket, auth.peer, snap);
      return;
    }
    this.#refused(auth.reason, socket.remoteAddress);
    if (auth.stage === 'identity') {
      this.tlsFailures.add(auth.reason);
      socket.destroy();
      return;
    }
    const me = snap.service.name;
    if (snap.service.protocol === 'http') {
      this.connections.track(socket);
      this.#deny.answer(socket, {
        status: REASONS[auth.kind].status,
        reason: auth.reason,
        kind: auth.kind,
        peer: auth.peer,
        service: me,
      });
      return;
    }
    this.traffic.requests += 1;
    this.traffic.meshError(auth.kind);
    this.traffic.latencyMs(0);
    if (this.#accessLog.on)
      logConnection(
        this.#accessLog,
        auth.peer,
        me,
        `${socket.remoteAddress}:${socket.remotePort}`,
        undefined,
        0,
        auth.reason,
      );
    socket.destroy();
  };

  #accept(socket: TLSSocket, peer: string, mode: InboundMode, app: Socket | undefined): void {
    const conn: AcceptedConnection = { peer, socket, mode, app };
    this.#accepted.add(conn);
    socket.once('close', () => this.#accepted.delete(conn));
  }

  /** http: requests on this connection go through InboundHttp, one by one. */
  #toHttp(socket: TLSSocket, peer: string): void {
    this.#accept(socket, peer, 'http', undefined);
    this.#http.handle(socket, peer);
  }

  /** The connection becomes a byte pipe to the app. */
  #toApp(socket: TLSSocket, peer: string, snap: ProxySnapshot): void {
    const app = pipeToApp(socket, peer, snap, {
      traffic: this.traffic,
      errors: this.errors,
      log: this.#throttled,
      accessLog: this.#accessLog,
      ...(snap.service.protocol === 'http' ? { unavailable: this.#appUnavailable } : {}),
    });
    this.#accept(socket, peer, 'pipe', app);
  }

  /** A piped http connection whose app cannot be reached: each request gets `502 app-unavailable`. */
  readonly #appUnavailable = (socket: TLSSocket, peer: string, reason: string): void => {
    const snap = this.#snapshot;
    this.#deny.answer(socket, {
      status: REASONS['app-unavailable'].status,
      reason,
      kind: 'app-unavailable',
      peer,
      service: snap?.service.name ?? '',
    });
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
      const reason = intentionDenies(conn.peer, next)?.reason;
      if (reason === undefined) continue;
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
    const listener = this.#listener;
    this.#listener = undefined;
    const closing = listener ? listener.close() : Promise.resolve();
    this.#http.draining = true;
    this.#deny.closeIdle();
    this.#http.closeIdle();
    const deadline = Date.now() + drainMs;
    while (this.connections.active > 0 && Date.now() < deadline) {
      this.#deny.closeIdle();
      this.#http.closeIdle();
      await sleep(50, { unref: true });
    }
    this.#http.closeAll();
    for (const s of this.connections.open) s.destroy();
    for (const c of this.#accepted) c.app?.destroy();
    listener?.destroyAll();
    this.#deny.close();
    await closing;
  }
}
