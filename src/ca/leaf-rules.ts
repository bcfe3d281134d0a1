/**
 * What a certificate must be to stand for a mesh identity, beyond its chain and its SPIFFE ID
 * (the X.509-SVID rules for leaves): not a CA, unable to sign certificates or CRLs, and able
 * to sign (TLS 1.3 authenticates with a signature). A leaf that breaks one of these would let
 * its holder mint identities or is not a leaf this CA issues, so both ends refuse it.
 *
 * Pure and on Node's own X509Certificate (or a PeerCertificate): the proxy checks it on every
 * new peer certificate and must not load @peculiar/asn1js for it. Node reports neither the
 * keyUsage bits nor every CA:TRUE, so both are read from the DER here, by a reader that knows
 * only the few structures on the way to those two extensions.
 */

export type LeafRuleFailure =
  | 'leaf-is-ca'
  | 'leaf-signs-certificates'
  | 'leaf-without-digital-signature'
  /** Extensions this reader cannot walk: no certificate the mesh CA makes, so fail closed. */
  | 'leaf-unreadable';

/** Node's crypto.X509Certificate, tls.PeerCertificate, or just the DER: only `raw` is read. */
export interface LeafInput {
  readonly raw: Buffer;
}

/** keyUsage bits (RFC 5280 4.2.1.3) as they sit in the BIT STRING's first content byte. */
const DIGITAL_SIGNATURE = 0x80;
const KEY_CERT_SIGN = 0x04;
const CRL_SIGN = 0x02;

/** id-ce-keyUsage (2.5.29.15) and id-ce-basicConstraints (2.5.29.19), as hex of the DER OID contents. */
const KEY_USAGE_OID = '551d0f';
const BASIC_CONSTRAINTS_OID = '551d13';

/**
 * Why `cert` cannot be a mesh identity, or undefined when it can. A certificate without a
 * keyUsage extension fails as lacking digitalSignature: this CA always sets it.
 */
export function leafRuleFailure(cert: LeafInput): LeafRuleFailure | undefined {
  // Only the DER is read: Node's `ca` is OpenSSL's X509_check_ca, which says no for CA:TRUE
  // when keyUsage lacks keyCertSign, while SPIFFE refuses CA:TRUE whatever the key usage.
  // Taking the DER also lets checkServerIdentity's PeerCertificate in without a re-parse.
  const der = cert.raw;
  const exts = extensionsOf(der);
  if (!exts) return 'leaf-unreadable';
  const isCa = basicConstraintsCa(der, exts);
  if (isCa === undefined) return 'leaf-unreadable';
  if (isCa) return 'leaf-is-ca';
  const usage = keyUsageByte(der, exts);
  if (usage === null) return 'leaf-without-digital-signature';
  if (usage === undefined) return 'leaf-unreadable';
  if ((usage & (KEY_CERT_SIGN | CRL_SIGN)) !== 0) return 'leaf-signs-certificates';
  if ((usage & DIGITAL_SIGNATURE) === 0) return 'leaf-without-digital-signature';
  return undefined;
}

interface Tlv {
  readonly tag: number;
  /** Offset of the contents. */
  readonly start: number;
  /** Offset just past the contents. */
  readonly end: number;
}

/** One DER TLV at `at`, within `limit`; undefined when it does not fit (low tag numbers only, as X.509 uses). */
function tlv(der: Buffer, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) return undefined;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  return end <= limit ? { tag, start, end } : undefined;
}

/** The children of a constructed TLV, in order. */
function children(der: Buffer, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const child = tlv(der, at, parent.end);
    if (!child) return undefined;
    out.push(child);
    at = child.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const BOOLEAN = 0x01;
const OID = 0x06;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
/** [3] EXPLICIT, the extensions of a v3 TBSCertificate. */
const EXTENSIONS = 0xa3;

type Extensions = ReadonlyMap<string, Tlv>;

/** The extensions of a DER certificate by OID (hex of the OID's content): each one's extnValue contents. Undefined when unreadable. */
function extensionsOf(der: Buffer): Extensions | undefined {
  const cert = tlv(der, 0, der.length);
  if (cert?.tag !== SEQUENCE) return undefined;
  const tbs = children(der, cert)?.[0];
  if (tbs?.tag !== SEQUENCE) return undefined;
  const fields = children(der, tbs);
  if (!fields) return undefined;
  const out = new Map<string, Tlv>();
  const wrapper = fields.find((t) => t.tag === EXTENSIONS);
  if (!wrapper) return out;
  const list = children(der, wrapper)?.[0];
  if (list?.tag !== SEQUENCE) return undefined;
  for (const ext of children(der, list) ?? []) {
    const parts = ext.tag === SEQUENCE ? children(der, ext) : undefined;
    if (!parts || parts.length < 2 || parts[0]!.tag !== OID) return undefined;
    const value = parts[1]!.tag === BOOLEAN ? parts[2] : parts[1];
    if (value?.tag !== OCTET_STRING) return undefined;
    out.set(der.subarray(parts[0]!.start, parts[0]!.end).toString('hex'), value);
  }
  return out;
}

/** basicConstraints' cA (false when the extension or the field is absent); undefined when unreadable. */
function basicConstraintsCa(der: Buffer, exts: Extensions): boolean | undefined {
  const value = exts.get(BASIC_CONSTRAINTS_OID);
  if (!value) return false;
  const seq = tlv(der, value.start, value.end);
  if (seq?.tag !== SEQUENCE || seq.end !== value.end) return undefined;
  const first = children(der, seq)?.[0];
  if (first?.tag !== BOOLEAN) return false;
  return first.end > first.start && der[first.start] !== 0;
}

/**
 * The first byte of the keyUsage bits (all the bits that matter here), 0 for an empty BIT
 * STRING, null when there is no keyUsage extension, undefined when it cannot be read.
 */
function keyUsageByte(der: Buffer, exts: Extensions): number | null | undefined {
  const value = exts.get(KEY_USAGE_OID);
  if (!value) return null;
  const bits = tlv(der, value.start, value.end);
  if (bits?.tag !== BIT_STRING || bits.end !== value.end || bits.end - bits.start < 1) return undefined;
  // Contents: the count of unused bits, then the bits themselves (none when the string is empty).
  return bits.end - bits.start === 1 ? 0 : der[bits.start + 1]!;
}
