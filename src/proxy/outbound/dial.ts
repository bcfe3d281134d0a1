/**
 * Opening one mTLS connection to one endpoint: the "attempt" stage shared by L4 and by the
 * L7 connection pool. A connection counts as made only after the TLS handshake and the
 * server identity check, so a refused, unreachable or impostor endpoint is a connect
 * failure — the one kind of failure that is always safe to fail over from, because not a
 * byte of the request has been sent yet.
 */
import { connect, type ConnectionOptions, type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import { connectFailureReason } from '../tls-reasons.js';
import type { TlsSessions } from './tls-sessions.js';
import type { RevokedServers } from './revoked-servers.js';
import { REVOKED_CERTIFICATE } from '../revoked.js';
import { ignore } from '../../util/async.js';

/** What the dial needs from the snapshot: this service's key/cert/roots and who the server must be. */
export interface DialTls {
  readonly secureContext: SecureContext;
  readonly checkServerIdentity: (hostname: string, cert: PeerCertificate) => Error | undefined;
  /**
   * Tickets of sessions verified against this checkServerIdentity (tls-sessions.ts). Node runs
   * checkServerIdentity only on full handshakes: a resumed session keeps the identity checked
   * when its ticket was issued, so a ticket must never be offered under another expectation.
   */
  readonly sessions?: TlsSessions;
  /** Server leaves on the snapshot's revoked list, refused after the handshake (revoked-servers.ts). */
  readonly revoked: RevokedServers;
}

/**
 * What a dial goes to and where it counts what happened: an endpoint (./endpoint.ts), or a
 * pool shared by several targets' endpoints for one instance, which counts on each of them
 * (./http/shared-pools.ts). Called once per connection, never per request.
 */
export interface DialTarget {
  readonly id: string;
  /** As dialled: brackets of an IPv6 literal removed. */
  readonly host: string;
  readonly port: number;
  /** A verified connection is open (`resumed`: by an earlier session's ticket); the socket is tracked until it closes. */
  connected(socket: TLSSocket, resumed: boolean): void;
  /** The dial failed with this reason (a stable reason string). */
  failed(reason: string): void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** A connection to an endpoint could not be made; `reason` is a stable reason string. */
export class ConnectFailure extends Error {
  readonly reason: string;
  readonly endpointId: string;

  constructor(endpoint: DialTarget, reason: string, cause?: unknown) {
    super(
      `connect to ${endpoint.id} (${endpoint.host}:${endpoint.port}) failed: ${reason}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'ConnectFailure';
    this.reason = reason;
    this.endpointId = endpoint.id;
  }
}

export type DialCallback = (err: ConnectFailure | null, socket?: TLSSocket) => void;

/**
 * `halfOpen`: keep our write side open after the endpoint's FIN (L4 pipes, which forward the
 * half-close). Pooled L7 connections must not: a pooled connection the far side closed has
 * to close here too, or it would sit half-dead in the pool.
 *
 * Dials `endpoint` and calls back once: with the socket after a verified handshake (the
 * socket then belongs to the caller, who must attach an 'error' listener at once), or with
 * a ConnectFailure (the socket is already destroyed).
 */
export function dialEndpoint(
  endpoint: DialTarget,
  tls: DialTls,
  timeoutMs: number,
  halfOpen: boolean,
  cb: DialCallback,
): void {
  const target = `${endpoint.host}:${endpoint.port}`;
  const sessions = tls.sessions;
  const entry = sessions?.get(target);
  const offered = entry?.session;
  const options: ConnectionOptions & { allowHalfOpen: boolean } = {
    host: endpoint.host,
    port: endpoint.port,
    secureContext: tls.secureContext,
    checkServerIdentity: tls.checkServerIdentity,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    // Node passes this on to the TLSSocket; the types do not list it.
    allowHalfOpen: halfOpen,
    ...(offered === undefined ? {} : { session: offered }),
  };
  const socket = connect(options);
  socket.setNoDelay(true);
  socket.setTimeout(timeoutMs);
  let done = false;
  let verified = false;
  /** The server leaf the session was verified with (resumed: the ticket's): NotAfter (ms) and serial. */
  let serverNotAfter = 0;
  let serverSerial = '';
  /** A ticket that came before 'secureConnect' (not seen with TLS 1.3, but then kept only once verified). */
  let early: Buffer | undefined;
  const onSession = (session: Buffer) => {
    if (verified) sessions!.set(target, session, serverNotAfter, serverSerial);
    else early = session;
  };
  if (sessions) socket.on('session', onSession);
  const fail = (reason: string, cause?: unknown) => {
    if (done) return;
    done = true;
    cleanup();
    // A late error from the dying socket must not become an unhandled 'error' event.
    socket.on('error', ignore);
    socket.destroy();
    socket.off('session', onSession);
    if (offered !== undefined) sessions!.delete(target);
    endpoint.failed(reason);
    cb(new ConnectFailure(endpoint, reason, cause));
  };
  const onError = (err: Error) => fail(connectFailureReason(err), err);
  const onTimeout = () => fail('connect-timeout');
  const onClose = () => fail('connection-closed');
  const onSecure = () => {
    if (done) return;
    // Past secureConnect, Node has checked the chain and (on a full handshake) the identity.
    const resumed = entry !== undefined && socket.isSessionReused();
    if (resumed) {
      serverNotAfter = entry.notAfter;
      serverSerial = entry.serial;
    } else {
      const peer = socket.getPeerCertificate();
      serverNotAfter = Date.parse(peer.valid_to);
      if (Number.isNaN(serverNotAfter)) serverNotAfter = 0;
      serverSerial = peer.serialNumber ?? '';
    }
    if (tls.revoked.refuses(serverSerial)) {
      fail(REVOKED_CERTIFICATE);
      return;
    }
    done = true;
    cleanup();
    verified = true;
    if (sessions && early !== undefined) sessions.set(target, early, serverNotAfter, serverSerial);
    socket.setTimeout(0);
    endpoint.connected(socket, resumed);
    tls.revoked.track(socket, serverSerial);
    cb(null, socket);
  };
  function cleanup() {
    socket.off('error', onError);
    socket.off('timeout', onTimeout);
    socket.off('close', onClose);
    socket.off('secureConnect', onSecure);
  }
  socket.on('error', onError);
  socket.on('timeout', onTimeout);
  socket.on('close', onClose);
  socket.on('secureConnect', onSecure);
}
