/**
 * The mesh port's TLS server, with the limits that keep a sidecar serving when clients
 * misbehave: a handshake must finish within `handshakeTimeoutMs`, at most
 * `maxPendingHandshakes` connections may be in their handshake at once (a flood of silent
 * connections cannot use up the others' turn), and at most `maxConnections` connections are
 * held in all. A connection over a limit is closed at once, counted and logged by the caller.
 *
 * TLS itself checks the chain (requestCert, rejectUnauthorized); who the verified peer is,
 * and whether it may come in, is authorize.ts's job.
 */
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { MeshError } from '../../errors/index.js';
import type { ProxySnapshot } from '../snapshot.js';
import { secureContextOptions } from '../tls-material.js';
import { serverHandshakeReason } from '../tls-reasons.js';

export interface ListenerLimits {
  /** A client must finish the TLS handshake within this. */
  readonly handshakeTimeoutMs: number;
  /** Connections in their TLS handshake at once. */
  readonly maxPendingHandshakes: number;
  /** Connections the listener holds at once, in their handshake or not. */
  readonly maxConnections: number;
}

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = {
  handshakeTimeoutMs: 10_000,
  maxPendingHandshakes: 256,
  maxConnections: 4096,
};

/** Refusal reasons of the limits (in `refusals`, next to the TLS and identity reasons). */
export const LIMIT_REASONS = {
  handshakes: 'too-many-handshakes',
  connections: 'too-many-connections',
} as const;

export interface ListenerEvents {
  /** A connection that passed the TLS handshake (chain checked). */
  secure(socket: TLSSocket): void;
  /** A handshake that failed, with its stable reason. */
  handshakeFailed(reason: string, socket: TLSSocket): void;
  /** A connection closed at once because a limit was reached. */
  overLimit(reason: string, remote: string | undefined): void;
}

/**
 * Node hands tlsClientError the TLS socket; the raw socket we refused under a limit is its
 * `_parent`. Only used to keep such refusals out of the handshake failures.
 */
type WrappedTls = TLSSocket & { _parent?: Socket };

export class MeshListener {
  readonly server: TlsServer;
  readonly #events: ListenerEvents;
  readonly #limits: ListenerLimits;
  /** Every TCP connection, handshaken or not, so that destroyAll() can end them all. */
  readonly #raw = new Set<Socket>();
  readonly #pending = new Set<Socket>();
  readonly #refused = new WeakSet<Socket>();

  private constructor(snap: ProxySnapshot, limits: ListenerLimits, events: ListenerEvents) {
    this.#events = events;
    this.#limits = limits;
    this.server = createTlsServer({
      ...secureContextOptions(snap.tls),
      requestCert: true,
      rejectUnauthorized: true,
      // Not half-open during the handshake: a client that closes its side then can never finish
      // it, and is let go at once instead of holding a handshake slot until the timeout.
      allowHalfOpen: false,
      handshakeTimeout: limits.handshakeTimeoutMs,
    });
    this.server.maxConnections = limits.maxConnections;
    this.server.on('drop', this.#onDrop);
    this.server.on('connection', this.#onRaw);
    this.server.on('tlsClientError', this.#onTlsClientError);
    this.server.on('secureConnection', this.#onSecure);
  }

  /** Binds `address:port`; MESH_ERR_UNAVAILABLE with a hint when it cannot. */
  static async listen(
    snap: ProxySnapshot,
    address: string,
    port: number,
    limits: ListenerLimits,
    events: ListenerEvents,
    onError: (err: Error) => void,
  ): Promise<MeshListener> {
    const l = new MeshListener(snap, limits, events);
    const server = l.server;
    await new Promise<void>((resolve, reject) => {
      const onListenError = (e: NodeJS.ErrnoException) => {
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
      server.once('error', onListenError);
      server.listen({ host: address, port }, () => {
        server.off('error', onListenError);
        resolve();
      });
    });
    // After listening, an accept error (EMFILE, ...) is logged; the server keeps running.
    server.on('error', onError);
    return l;
  }

  readonly #onDrop = (data?: { remoteAddress?: string }): void => {
    this.#events.overLimit(LIMIT_REASONS.connections, data?.remoteAddress);
  };

  readonly #onRaw = (raw: Socket): void => {
    this.#raw.add(raw);
    raw.once('close', () => {
      this.#raw.delete(raw);
      this.#pending.delete(raw);
    });
    if (this.#pending.size >= this.#limits.maxPendingHandshakes) {
      this.#refused.add(raw);
      this.#events.overLimit(LIMIT_REASONS.handshakes, raw.remoteAddress);
      raw.destroy();
      return;
    }
    this.#pending.add(raw);
  };

  readonly #onTlsClientError = (err: Error, socket: TLSSocket): void => {
    const raw = (socket as WrappedTls)._parent;
    if (raw) this.#pending.delete(raw);
    if (raw && this.#refused.has(raw)) {
      socket.destroy();
      return;
    }
    this.#events.handshakeFailed(serverHandshakeReason(err, socket.authorizationError), socket);
    // Node leaves some failed handshakes open (a handshake timeout, for one): end them here.
    socket.destroy();
  };

  readonly #onSecure = (socket: TLSSocket): void => {
    const raw = (socket as WrappedTls)._parent;
    if (raw) this.#pending.delete(raw);
    // From here a FIN is a half-close the byte pipe carries on (Node reads the flag at 'end').
    socket.allowHalfOpen = true;
    this.#events.secure(socket);
  };

  /** Connections in their handshake now (for tests and stats). */
  get pendingHandshakes(): number {
    return this.#pending.size;
  }

  /** New handshakes present the new certificate and trust the new roots; open connections keep theirs. */
  setSecureContext(snap: ProxySnapshot): void {
    this.server.setSecureContext(secureContextOptions(snap.tls));
  }

  /** Stops accepting; resolves once every connection has closed (see destroyAll). */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Ends every TCP connection the listener accepted. */
  destroyAll(): void {
    for (const raw of this.#raw) raw.destroy();
  }
}
