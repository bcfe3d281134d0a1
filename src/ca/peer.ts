/**
 * A peer's mesh identity from Node's own parsed certificate. Every proxy checks the SPIFFE ID
 * of every peer; reading it from `X509Certificate.subjectAltName` (parsed natively by
 * OpenSSL) keeps asn1js and @peculiar/x509 — several MB of heap — out of every proxy process.
 * This module imports only node:crypto and the SPIFFE rules, and must stay that way
 * (test/proxy/footprint.test.ts checks what a proxy loads).
 *
 * Node prints the SAN list as `Type:value, Type:value`, and since Node 17.3 quotes any value
 * that holds a comma, a quote, a backslash or a control character as a JSON string
 * (`URI:"a,b"`), so the list splits unambiguously. A mesh SPIFFE ID never needs quoting; a
 * quoted URI still counts as a URI (for `multiple-uri-sans`) and then fails as `not-spiffe`.
 * The text shows only the first SAN extension, though: when the DER may hold a second one,
 * the SANs are read from the DER with @peculiar/x509, loaded then and only then (the CA never
 * issues such certificates and OpenSSL's chain check refuses them, so a proxy never does).
 */
import { webcrypto, X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import type { PeerCertificate } from 'node:tls';
import { leafRuleFailure, type LeafRuleFailure } from './leaf-rules.js';
import { parseSpiffeId, type SpiffeKind } from './spiffe.js';

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
export type CertificateInput = PeerCertificate | X509Certificate | string | null | undefined;

/** Node's parsed certificate for any input, or undefined when there is none or it cannot be read. */
export function nodeCertificate(cert: CertificateInput): X509Certificate | undefined {
  if (cert === null || cert === undefined) return undefined;
  if (cert instanceof X509Certificate) return cert;
  try {
    if (typeof cert === 'string') return new X509Certificate(cert);
    const raw: unknown = (cert as Partial<PeerCertificate>).raw;
    return Buffer.isBuffer(raw) && raw.length > 0 ? new X509Certificate(raw) : undefined;
  } catch {
    return undefined;
  }
}

/** One entry of Node's SAN text: its type (`URI`, `DNS`, `IP Address`, ...) and its value, unquoted. */
export interface SanEntry {
  readonly type: string;
  readonly value: string;
  /** Node quoted it (it held a character a plain entry may not). */
  readonly quoted: boolean;
}

/**
 * Splits Node's `subjectAltName` text into entries; undefined when the text does not have
 * the shape Node prints (the caller fails closed).
 */
export function splitSubjectAltName(text: string | undefined): SanEntry[] | undefined {
  const out: SanEntry[] = [];
  if (text === undefined || text === '') return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) return undefined;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    let quoted = false;
    if (text[j] === '"') {
      // A JSON string: find its closing quote, skipping escaped characters.
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      if (k >= text.length) return undefined;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        return undefined;
      }
      quoted = true;
      j = k + 1;
    } else {
      const end = text.indexOf(', ', j);
      j = end < 0 ? text.length : end;
      value = text.slice(colon + 1, j);
    }
    out.push({ type, value, quoted });
    if (j === text.length) break;
    if (text.slice(j, j + 2) !== ', ') return undefined;
    i = j + 2;
  }
  return out;
}

/** DER of the subjectAltName extension's OID (2.5.29.17): tag 06, length 03, 55 1D 11. */
const SAN_OID_DER = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);
const SAN_OID = '2.5.29.17';

/** How many times the SAN OID occurs in the DER (over-cautious: a chance match only costs the DER read). */
function sanOidCount(der: Buffer): number {
  let n = 0;
  for (let at = der.indexOf(SAN_OID_DER); at !== -1; at = der.indexOf(SAN_OID_DER, at + 1)) n += 1;
  return n;
}

type PeculiarX509 = typeof import('@peculiar/x509');
let peculiar: PeculiarX509 | undefined;

/** @peculiar/x509, loaded on first use; its CommonJS build is the one `import` gets too (x509.ts). */
function peculiarX509(): PeculiarX509 {
  if (!peculiar) {
    const require = createRequire(import.meta.url);
    // The library's required Reflect polyfill, first (see x509.ts).
    require('reflect-metadata');
    peculiar = require('@peculiar/x509') as PeculiarX509;
    peculiar.cryptoProvider.set(webcrypto);
  }
  return peculiar;
}

/** The URI SANs as the DER says them: exact for any certificate, slow; undefined when unreadable or with two SAN extensions. */
function uriSansFromDer(der: Buffer): string[] | undefined {
  try {
    const x = peculiarX509();
    const exts = new x.X509Certificate(der).extensions.filter((e) => e.type === SAN_OID);
    if (exts.length > 1) return undefined;
    if (exts.length === 0) return [];
    const names = new x.SubjectAlternativeNameExtension(exts[0]!.rawData).names.items;
    return names.filter((n) => n.type === 'url').map((n) => n.value);
  } catch {
    return undefined;
  }
}

/** The certificate's URI SAN values, with whether Node quoted each; undefined when they cannot be read exactly. */
function uriSansOf(x: X509Certificate): Array<{ value: string; quoted: boolean }> | undefined {
  const text: string | undefined | null = x.subjectAltName;
  if (text === null || sanOidCount(x.raw) > (text === undefined || text === '' ? 0 : 1)) {
    return uriSansFromDer(x.raw)?.map((value) => ({ value, quoted: false }));
  }
  return splitSubjectAltName(text ?? undefined)?.filter((e) => e.type === 'URI');
}

function fail(reason: PeerIdentityFailure): PeerIdentityResult {
  return { ok: false, reason };
}

/**
 * The peer's mesh identity, checked against what this side expects. The certificate must be
 * a leaf fit for an identity (leafRuleFailure: no CA, no certificate signing, can sign) and
 * carry exactly one URI SAN, a mesh SPIFFE ID in `trustDomain` (and of `kind` / `name`
 * when given). A SAN list we cannot read fails closed as `not-spiffe`: this CA never
 * issues such entries, so such a certificate cannot be a mesh identity.
 */
export function peerIdentity(cert: CertificateInput, expect: PeerExpectation): PeerIdentityResult {
  const x = nodeCertificate(cert);
  if (!x) return fail('no-certificate');
  const notALeaf = leafRuleFailure(x);
  if (notALeaf) return fail(notALeaf);
  const uris = uriSansOf(x);
  if (!uris) return fail('not-spiffe');
  if (uris.length === 0) return fail('no-uri-san');
  if (uris.length > 1) return fail('multiple-uri-sans');
  const uri = uris[0]!;
  const id = uri.quoted ? undefined : parseSpiffeId(uri.value);
  if (!id) return fail('not-spiffe');
  if (id.trustDomain !== expect.trustDomain) return fail('wrong-trust-domain');
  if (expect.kind !== undefined && id.kind !== expect.kind) return fail('wrong-kind');
  if (expect.name !== undefined && id.name !== expect.name) return fail('wrong-name');
  return { ok: true, id: uri.value, kind: id.kind, name: id.name };
}

/**
 * NotBefore and NotAfter as Dates. Node 20 gives them only as OpenSSL's text
 * (`Dec  2 01:57:33 2026 GMT`), which Date parses; newer Nodes give Dates directly.
 */
export function validityOf(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  const c = cert as X509Certificate & { validFromDate?: Date; validToDate?: Date };
  const notBefore = c.validFromDate ?? new Date(cert.validFrom);
  const notAfter = c.validToDate ?? new Date(cert.validTo);
  return { notBefore, notAfter };
}
