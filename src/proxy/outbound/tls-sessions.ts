/**
 * TLS 1.3 session tickets for one cluster's dials, so that a new connection to an endpoint
 * resumes the last verified session instead of running a full handshake (no certificate
 * sent, signed or parsed on either side, and no identity check on ours). A ticket is kept
 * only from a connection whose handshake passed the chain check and the SPIFFE identity
 * check of this cluster's service, and it is offered only to the same address: a resumed
 * session is one the server proved, with the ticket's key, to have made with us, so its
 * identity is the one verified at that full handshake. One cache per cluster and per TLS
 * material (cluster.ts makes a new one on rotation), so a ticket never crosses from one
 * expected identity or one client certificate to another. The server still checks the
 * resumed session's client certificate against its revoked serials on every connection
 * (inbound authorize), and its ticket lifetime bounds how long one session is resumed.
 */

/** A ticket and what was verified with it: the server leaf's NotAfter (ms) and serial. */
export interface TlsSession {
  readonly session: Buffer;
  readonly notAfter: number;
  readonly serial: string;
}

/** Endpoints one cluster keeps tickets for at most; the oldest goes first. */
const MAX_TARGETS = 1024;

export class TlsSessions {
  readonly #max: number;
  readonly #byTarget = new Map<string, TlsSession>();

  constructor(maxTargets = MAX_TARGETS) {
    this.#max = Math.max(1, maxTargets);
  }

  get size(): number {
    return this.#byTarget.size;
  }

  /**
   * The newest ticket for `target` (host:port) and the server certificate's NotAfter (ms) it was
   * verified with, unless that has passed: TLS checks no dates on a resumed session, and a client
   * does not even see the server's certificate then, so a ticket is not offered past it.
   */
  get(target: string, now = Date.now()): TlsSession | undefined {
    const e = this.#byTarget.get(target);
    if (e !== undefined && now >= e.notAfter) {
      this.#byTarget.delete(target);
      return undefined;
    }
    return e;
  }

  /** Keeps `session` for `target`, replacing the one before (servers hand out a fresh ticket per connection). */
  set(target: string, session: Buffer, notAfter: number, serial: string): void {
    if (!this.#byTarget.delete(target) && this.#byTarget.size >= this.#max)
      this.#byTarget.delete(this.#byTarget.keys().next().value!);
    this.#byTarget.set(target, { session, notAfter, serial });
  }

  /** Forgets `target`'s ticket (its connection failed: the next dial runs a full handshake). */
  delete(target: string): void {
    this.#byTarget.delete(target);
  }

  clear(): void {
    this.#byTarget.clear();
  }
}
