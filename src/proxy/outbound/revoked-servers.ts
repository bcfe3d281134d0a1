/**
 * Revoked leaves on the outbound side: a server presenting a leaf on the snapshot's
 * `revokedSerials` (a removed node's, still valid by chain, dates and identity) is refused
 * like an impostor, so the attempt fails over to another endpoint; a push that adds a serial
 * closes the mesh connections already open to such a server. The inbound does the same for
 * clients (inbound/index.ts); without this side a removed node could go on serving callers
 * until its leaf expired.
 */
import type { TLSSocket } from 'node:tls';
import { RevokedSerials } from '../revoked.js';

export class RevokedServers {
  readonly #serials = new RevokedSerials();
  /** Verified mesh connections still open, with their server leaf's serial. */
  readonly #open = new Map<TLSSocket, string>();

  /**
   * Whether a server leaf (by serial) is revoked. The dial asks after every handshake, resumed
   * ones too: Node runs checkServerIdentity only on full handshakes, and a client sees no
   * certificate on a resumed session, so the serial there is the one kept with the ticket.
   */
  refuses(serial: string | undefined): boolean {
    return this.#serials.hasSerial(serial);
  }

  track(socket: TLSSocket, serial: string): void {
    this.#open.set(socket, serial);
    socket.once('close', () => this.#open.delete(socket));
  }

  /** Takes the snapshot's list; returns how many open connections it closed. */
  update(serials: readonly string[]): number {
    if (!this.#serials.update(serials) || this.#serials.size === 0) return 0;
    let closed = 0;
    for (const [socket, serial] of this.#open) {
      if (!this.#serials.hasSerial(serial)) continue;
      socket.destroy();
      this.#open.delete(socket);
      closed += 1;
    }
    return closed;
  }
}
