/**
 * Identity checks that both ends of every mesh TLS connection run on the peer's certificate.
 * TLS itself (ca: [root], rejectUnauthorized) checks chain and expiry; Node's default
 * checkServerIdentity only looks at DNS/IP SANs and the CN, never at URI SANs, so the
 * SPIFFE identity is checked here — on the server for the client and on the client for
 * the server. Everything here runs on Node's own certificate parser (peer.ts), so a proxy
 * can use it without loading @peculiar/x509.
 */
import { X509Certificate as NodeX509Certificate, type KeyObject } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { MeshError } from '../errors/index.js';
import { peerIdentity, validityOf, type PeerExpectation } from './peer.js';

export {
  peerIdentity,
  type CertificateInput,
  type PeerExpectation,
  type PeerIdentityFailure,
  type PeerIdentityResult,
} from './peer.js';

export type ChainFailure = 'expired' | 'not-yet-valid' | 'unknown-ca' | 'bad-signature';
export type ChainResult = { readonly ok: true } | { readonly ok: false; readonly reason: ChainFailure };

/**
 * A `checkServerIdentity` for tls.connect that checks the server's SPIFFE ID instead of
 * the host name (mesh servers are dialled by address; their identity is the URI SAN).
 */
export function spiffeServerIdentityCheck(
  expect: PeerExpectation,
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  return (_hostname, cert) => {
    const r = peerIdentity(cert, expect);
    if (r.ok) return undefined;
    return new MeshError('MESH_ERR_CERT_INVALID', `server identity refused: ${r.reason}`, {
      details: { reason: r.reason },
    });
  };
}

function parseCertificate(pem: string, what: string): NodeX509Certificate {
  try {
    return new NodeX509Certificate(pem);
  } catch (e) {
    throw new MeshError('MESH_ERR_CERT_INVALID', `the ${what} is not a readable PEM certificate`, { cause: e });
  }
}

function verifiedBy(cert: NodeX509Certificate, key: KeyObject): boolean {
  try {
    return cert.verify(key);
  } catch {
    return false;
  }
}

function timeFailure(cert: NodeX509Certificate, now: Date): ChainFailure | undefined {
  const { notBefore, notAfter } = validityOf(cert);
  if (now.getTime() < notBefore.getTime()) return 'not-yet-valid';
  if (now.getTime() > notAfter.getTime()) return 'expired';
  return undefined;
}

/**
 * Verifies a leaf against trusted roots outside a TLS handshake (e.g. to log why a
 * handshake failed). Order: issuer found (name and AKI/SKI match a CA root), signature,
 * then validity of leaf and root at `now`. Throws MESH_ERR_CERT_INVALID for unreadable PEM.
 */
export function verifyChain(leafPem: string, rootPems: readonly string[], now: Date = new Date()): ChainResult {
  const leaf = parseCertificate(leafPem, 'leaf certificate');
  const roots = rootPems.map((p) => parseCertificate(p, 'CA certificate'));
  // checkIssued compares the issuer name and the AKI with the root's SKI, so a foreign
  // root that happens to share our subject name is not taken for ours.
  const candidates = roots.filter((r) => r.ca && leaf.checkIssued(r));
  if (candidates.length === 0) return { ok: false, reason: 'unknown-ca' };
  const issuer = candidates.find((r) => verifiedBy(leaf, r.publicKey));
  if (!issuer) return { ok: false, reason: 'bad-signature' };
  const reason = timeFailure(leaf, now) ?? timeFailure(issuer, now);
  return reason ? { ok: false, reason } : { ok: true };
}

/** SHA-256 fingerprint of the certificate's DER, uppercase hex with colons (openssl's format). */
export function fingerprintOf(pem: string): string {
  return parseCertificate(pem, 'certificate').fingerprint256;
}

/** The certificate's NotAfter. */
export function certExpiry(pem: string): Date {
  return validityOf(parseCertificate(pem, 'certificate')).notAfter;
}
