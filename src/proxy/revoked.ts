/**
 * Serials of revoked mesh certificates, from the snapshot: the leaves of a node the admin
 * removed (`meshctl node remove`), still valid by date and chain but no longer anyone's
 * identity. The inbound refuses such clients and the outbound such servers, on new connections,
 * and both close the open ones at once, instead of waiting for them to expire.
 */
import type { X509Certificate } from 'node:crypto';
import { normalizeSerial } from '../ca/serial.js';

/** The refusal's reason on either side: a client's leaf at the inbound, a server's at the outbound. */
export const REVOKED_CERTIFICATE = 'revoked-certificate';

export class RevokedSerials {
  #serials: ReadonlySet<string> = new Set();
  /** The list as last given, to tell whether a push changed it. */
  #given: readonly string[] = [];

  /** Takes the snapshot's list; true when it differs from the one before. */
  update(serials: readonly string[]): boolean {
    if (serials.length === this.#given.length && serials.every((s, i) => s === this.#given[i])) return false;
    this.#given = serials;
    this.#serials = new Set(serials.map(normalizeSerial));
    return true;
  }

  get size(): number {
    return this.#serials.size;
  }

  /** Whether the peer's certificate is on the list (never for no certificate: TLS refuses those first). */
  has(cert: X509Certificate | undefined): boolean {
    return this.hasSerial(cert?.serialNumber);
  }

  hasSerial(serial: string | undefined): boolean {
    if (this.#serials.size === 0 || !serial) return false;
    return this.#serials.has(normalizeSerial(serial));
  }
}
