/**
 * The L7 keep-alive connection pool of one endpoint: an https.Agent whose connections are
 * made by dialEndpoint. Requests reuse idle mTLS connections instead of paying a handshake
 * each (http-proxy's default without an agent is one connection per request).
 *
 * The agent hands a connection to a request only once the handshake and the server
 * identity check are done, so a request that sees a connect failure has not sent a byte,
 * and the forwarder may try the next endpoint with the same request.
 */
import { Agent } from 'node:https';
import type { Duplex } from 'node:stream';
import { dialEndpoint, type DialTls } from './dial.js';
import type { Endpoint } from './endpoint.js';

export interface PoolTimeouts {
  readonly connectTimeoutMs: number;
  /** How long an idle pooled connection is kept (the server's Keep-Alive hint may shorten it). */
  readonly idleTimeoutMs: number;
}

export class EndpointPool extends Agent {
  readonly #endpoint: Endpoint;
  readonly #tls: DialTls;
  readonly #connectTimeoutMs: number;
  readonly #name: string;
  #destroyed = false;

  constructor(endpoint: Endpoint, tls: DialTls, timeouts: PoolTimeouts) {
    super({ keepAlive: true, timeout: timeouts.idleTimeoutMs, maxCachedSessions: 0, scheduling: 'lifo' });
    this.#endpoint = endpoint;
    this.#tls = tls;
    this.#connectTimeoutMs = timeouts.connectTimeoutMs;
    this.#name = `${endpoint.id}@${endpoint.host}:${endpoint.port}`;
  }

  /**
   * One pool name for everything: the agent serves one endpoint with one TLS setting. (The
   * default name concatenates every TLS option, certificates included, on each request.)
   */
  override getName(): string {
    return this.#name;
  }

  override createConnection(
    _options: unknown,
    cb?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    dialEndpoint(this.#endpoint, this.#tls, this.#connectTimeoutMs, false, (err, socket) => {
      if (!err && this.#destroyed) {
        // Dialled before the pool was destroyed, connected after: nobody may use it.
        socket!.destroy();
        cb?.(new Error('the connection pool was closed'), undefined as unknown as Duplex);
      } else if (err) cb?.(err, undefined as unknown as Duplex);
      else cb?.(null, socket!);
    });
    return undefined;
  }

  override destroy(): void {
    this.#destroyed = true;
    super.destroy();
  }

  /**
   * Taken out of service (certificate rotation, endpoint gone): idle connections close now,
   * connections in use finish their request and then close instead of going back to the pool.
   */
  retire(): void {
    this.maxFreeSockets = 0;
    for (const list of Object.values(this.freeSockets)) {
      for (const s of [...(list ?? [])]) s.destroy();
    }
  }
}
