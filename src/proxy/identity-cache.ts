/**
 * Peer identity checks cached by certificate fingerprint. Every mesh handshake checks the
 * peer's SPIFFE ID, and parsing a certificate's extensions costs milliseconds, while the
 * peers of one proxy present a handful of certificates over and over (every connection from
 * `web` shows web's leaf). The SHA-256 fingerprint names the certificate exactly, and the
 * answer depends only on the certificate and the fixed expectation, so it can be kept.
 * Chain and validity stay TLS's job on every handshake.
 */
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { peerIdentity, type PeerExpectation, type PeerIdentityResult } from '../ca/index.js';
import { MeshError } from '../errors/index.js';

/** Leaves rotate daily; a bound keeps a flood of distinct certificates from growing the map. */
const MAX_ENTRIES = 1024;

export class IdentityCache {
  readonly expect: PeerExpectation;
  readonly #results = new Map<string, PeerIdentityResult>();

  constructor(expect: PeerExpectation) {
    this.expect = expect;
  }

  check(cert: PeerCertificate | X509Certificate | null | undefined): PeerIdentityResult {
    const fp = cert?.fingerprint256;
    if (typeof fp !== 'string' || fp === '') return peerIdentity(cert, this.expect);
    const hit = this.#results.get(fp);
    if (hit !== undefined) return hit;
    const r = peerIdentity(cert, this.expect);
    if (this.#results.size >= MAX_ENTRIES) this.#results.clear();
    this.#results.set(fp, r);
    return r;
  }
}

/**
 * `checkServerIdentity` for tls.connect, as spiffeServerIdentityCheck (src/ca) but cached:
 * the same error and `details.reason`, which connectFailureReason turns into a stable reason.
 */
export function cachedServerIdentityCheck(
  expect: PeerExpectation,
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  const cache = new IdentityCache(expect);
  return (_hostname, cert) => {
    const r = cache.check(cert);
    if (r.ok) return undefined;
    return new MeshError('MESH_ERR_CERT_INVALID', `server identity refused: ${r.reason}`, {
      details: { reason: r.reason },
    });
  };
}
