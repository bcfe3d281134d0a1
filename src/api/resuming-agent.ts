/**
 * An https.Agent that keeps its TLS session across failed connections, so a client resumes
 * (TLS 1.3 PSK: no certificates sent, signed or verified) when its server is back. Node's own
 * agent drops the cached session whenever a connection closes with an error, so the first
 * refused connection while a registry restarts loses it, and every agent of a fleet then makes
 * a full handshake at the moment the registry is busiest (the fault suite's 1,000 reconnecting
 * agents). One session is enough: the newest it was given.
 *
 * Several agents may share one session (SharedTlsSession): every registry of a mesh takes the
 * others' tickets (their ticket keys derive from the CA key, src/registry/session-tickets.ts),
 * so an agent failing over to another registry resumes too, instead of a full handshake at the
 * moment a whole fleet moves. Node skips the host-name check on a resumed session (it checked
 * the certificate's names when the session was made); resuming proves the server holds the
 * ticket key, which only the mesh's registries have. A server that does not take the session
 * (new keys, expired, another mesh) just makes a full handshake, whose session replaces it.
 */
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

/** The TLS session the clients of one identity (one node certificate) share across registries. */
export class SharedTlsSession {
  session: Buffer | undefined;
}

export class ResumingAgent extends https.Agent {
  readonly #shared: SharedTlsSession;

  constructor(opts: https.AgentOptions, shared: SharedTlsSession = new SharedTlsSession()) {
    super(opts);
    this.#shared = shared;
  }

  override createConnection(options: https.RequestOptions): Duplex {
    const session = this.#shared.session;
    const socket = tls.connect({
      ...(options as tls.ConnectionOptions),
      ...(session ? { session } : {}),
    });
    socket.on('session', (s: Buffer) => {
      this.#shared.session = s;
    });
    return socket;
  }
}
