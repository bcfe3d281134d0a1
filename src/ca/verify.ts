/**
 * Identity checks that both ends of every mesh TLS connection run on the peer's certificate.
 * TLS itself (ca: [root], rejectUnauthorized) checks chain and expiry; Node's default
 * checkServerIdentity only looks at DNS/IP SANs and the CN, never at URI SANs, so the
 * SPIFFE identity is checked here — on the server for the client and on the client for
 * the server.
 */
import { X509Certificate as NodeX509Certificate, type KeyObject } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { MeshError } from '../errors/index.js';
import { leafRuleFailure, type LeafRuleFailure } from './leaf-rules.js';
import { uriSansFromNode } from './node-sans.js';
import { readSubjectAltNames } from './san.js';
import { parseSpiffeId, type SpiffeKind } from './spiffe.js';
import { x509 } from './x509.js';

/** Stable reasons, fit for logs, metrics labels and tests. */
export type PeerIdentityFailure =
  | 'no-certificate'
  | 'multiple-uri-sans'
  | 'no-uri-san'
  | 'not-spiffe'
  | 'wrong-trust-domain'
  | 'wrong-kind'
  | 'wrong-name'
  | LeafRuleFailure;

export type PeerIdentityResult =
  | { readonly ok: true; readonly id: string; readonly kind: SpiffeKind; readonly name: string }
  | { readonly ok: false; readonly reason: PeerIdentityFailure };

export interface PeerExpectation {
  readonly trustDomain: string;
  readonly kind?: SpiffeKind;
  readonly name?: string;
}

/** What a TLS socket, a parsed certificate or a file gives us. `getPeerCertificate()` returns `{}` or null when there is none. */
export type CertificateInput = PeerCertificate | NodeX509Certificate | string | null | undefined;

export type ChainFailure = 'expired' | 'not-yet-valid' | 'unknown-ca' | 'bad-signature';
export type ChainResult = { readonly ok: true } | { readonly ok: false; readonly reason: ChainFailure };

/** Node's own parse of the input (OpenSSL's, native and fast), or undefined when there is no certificate. */
function nodeCertOf(cert: CertificateInput): NodeX509Certificate | undefined {
  if (cert === null || cert === undefined) return undefined;
  if (cert instanceof NodeX509Certificate) return cert;
  const input: unknown = typeof cert === 'string' ? cert : (cert as Partial<PeerCertificate>).raw;
  if (typeof input !== 'string' && !(Buffer.isBuffer(input) && input.length > 0)) return undefined;
  try {
    return new NodeX509Certificate(input);
  } catch {
    return undefined;
  }
}

/** The URI SANs read from the DER with @peculiar/x509: the slow, exact path for unusual certificates. */
function uriSansFromDer(der: Buffer): string[] | 'no-certificate' | 'not-spiffe' {
  let parsed: x509.X509Certificate;
  try {
    parsed = new x509.X509Certificate(der);
  } catch {
    return 'no-certificate';
  }
  const read = readSubjectAltNames(() => parsed.extensions);
  return read.ok ? read.sans.uris : 'not-spiffe';
}

function fail(reason: PeerIdentityFailure): PeerIdentityResult {
  return { ok: false, reason };
}

/**
 * The peer's mesh identity, checked against what this side expects. The certificate must be
 * a leaf fit for an identity (leafRuleFailure: no CA, no certificate signing, can sign) and
 * carry exactly one URI SAN, a mesh SPIFFE ID in `trustDomain` (and of `kind` / `name`
 * when given). Any SAN we cannot decode fails closed as `not-spiffe`: this CA never
 * issues such entries, so such a certificate cannot be a mesh identity. The SANs come from
 * Node's own parse when that is exact (node-sans.ts), else from the DER.
 */
export function peerIdentity(cert: CertificateInput, expect: PeerExpectation): PeerIdentityResult {
  const x = nodeCertOf(cert);
  if (!x) return fail('no-certificate');
  const notALeaf = leafRuleFailure(x);
  if (notALeaf) return fail(notALeaf);
  const uris = uriSansFromNode(x) ?? uriSansFromDer(x.raw);
  if (typeof uris === 'string') return fail(uris);
  if (uris.length === 0) return fail('no-uri-san');
  if (uris.length > 1) return fail('multiple-uri-sans');
  const uri = uris[0]!;
  const id = parseSpiffeId(uri);
  if (!id) return fail('not-spiffe');
  if (id.trustDomain !== expect.trustDomain) return fail('wrong-trust-domain');
  if (expect.kind !== undefined && id.kind !== expect.kind) return fail('wrong-kind');
  if (expect.name !== undefined && id.name !== expect.name) return fail('wrong-name');
  return { ok: true, id: uri, kind: id.kind, name: id.name };
}

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

function validity(cert: NodeX509Certificate): { notBefore: Date; notAfter: Date } {
  // Node 20 exposes validity only as text; @peculiar/x509 gives Dates from the DER.
  const p = new x509.X509Certificate(cert.raw);
  return { notBefore: p.notBefore, notAfter: p.notAfter };
}

function timeFailure(cert: NodeX509Certificate, now: Date): ChainFailure | undefined {
  const { notBefore, notAfter } = validity(cert);
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
  return validity(parseCertificate(pem, 'certificate')).notAfter;
}
