/**
 * An https.Agent that keeps its TLS session across failed connections, so a client resumes
 * (TLS 1.3 PSK: no certificates sent, signed or verified) when its server is back. Node's own
 * agent drops the cached session whenever a connection closes with an error, so the first
 * refused connection while a registry restarts loses it, and every agent of a fleet then makes
 * a full handshake at the moment the registry is busiest (the fault suite's 1,000 reconnecting
 * agents). An HttpClient talks to one server, so one session is enough: the newest it was given.
 * A server that no longer accepts it (new keys, expired) just makes a full handshake.
 */
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

export class ResumingAgent extends https.Agent {
  #session: Buffer | undefined;

  override createConnection(options: https.RequestOptions): Duplex {
    const socket = tls.connect({
      ...(options as tls.ConnectionOptions),
      ...(this.#session ? { session: this.#session } : {}),
    });
    socket.on('session', (s: Buffer) => {
      this.#session = s;
    });
    return socket;
  }
}
