/**
 * Peer identity checks cached by certificate fingerprint, for both ends of mesh connections
 * (the proxies' inbound and outbound handshakes, the registry's client certificates). Peers
 * present the same few certificates over and over (every connection from `web` shows web's
 * leaf; an agent reconnecting shows its node certificate again). The SHA-256 fingerprint
 * names the certificate exactly, and the answer depends only on the certificate and the fixed
 * expectation, so it can be kept. Chain and validity stay TLS's job on every handshake, and
 * revocation the caller's on every request.
 */
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { MeshError } from '../errors/index.js';
import { peerIdentity, type PeerExpectation, type PeerIdentityResult } from './verify.js';

/** Leaves rotate daily; a bound keeps a flood of distinct certificates from growing the map. */
const DEFAULT_MAX_ENTRIES = 1024;

export class IdentityCache {
  readonly expect: PeerExpectation;
  readonly #max: number;
  readonly #results = new Map<string, PeerIdentityResult>();

  /** `maxEntries`: how many certificates to remember (a registry sees one per node). */
  constructor(expect: PeerExpectation, maxEntries = DEFAULT_MAX_ENTRIES) {
    this.expect = expect;
    this.#max = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#results.size;
  }

  check(cert: PeerCertificate | X509Certificate | null | undefined): PeerIdentityResult {
    const fp = cert?.fingerprint256;
    if (typeof fp !== 'string' || fp === '') return peerIdentity(cert, this.expect);
    const hit = this.#results.get(fp);
    if (hit !== undefined) return hit;
    const r = peerIdentity(cert, this.expect);
    // Oldest first out (Map keeps insertion order): a full cache drops one entry, not all.
    if (this.#results.size >= this.#max) this.#results.delete(this.#results.keys().next().value!);
    this.#results.set(fp, r);
    return r;
  }
}

/**
 * `checkServerIdentity` for tls.connect, as spiffeServerIdentityCheck but cached: the same
 * error and `details.reason`, which the proxy's connectFailureReason turns into a stable reason.
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
