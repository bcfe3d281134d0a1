/**
 * The URI SANs of a certificate as Node (OpenSSL) already parsed it, without decoding the DER
 * again in JavaScript. Every mesh handshake checks the peer's URI SAN; decoding the certificate
 * with @peculiar/x509 (asn1js) costs about a millisecond each, which a registry taking thousands
 * of agents' connections spends most of its time on, while OpenSSL has parsed it during the
 * handshake anyway.
 *
 * Node's `subjectAltName` text is unambiguous since CVE-2021-44532: entries are joined by ", ",
 * and any value holding a comma, quote, backslash or a non-printable byte is printed as a
 * quoted JSON string with commas escaped, so ", " never occurs inside an entry. The text does
 * not show everything, though: it prints only the first SAN extension, and entries of other
 * types (otherName, directory names, …) only approximately. So this answers only for the plain
 * case every mesh certificate is — one SAN extension of URI, DNS and IP entries with unquoted
 * values — and says "don't know" otherwise; the caller then reads the DER (readSubjectAltNames).
 */
import type { X509Certificate } from 'node:crypto';

/** DER of the subjectAltName extension's OID (2.5.29.17): tag 06, length 03, 55 1D 11. */
const SAN_OID_DER = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);

const PLAIN_TYPES = ['URI:', 'DNS:', 'IP Address:'] as const;

/** How many times the SAN OID occurs in the DER: 0 or 1 proves at most one SAN extension. */
function sanOidCount(der: Buffer): number {
  let n = 0;
  for (let at = der.indexOf(SAN_OID_DER); at !== -1; at = der.indexOf(SAN_OID_DER, at + 1)) n += 1;
  return n;
}

/**
 * The certificate's URI SANs, or undefined when Node's text cannot be trusted to say exactly
 * (more than one SAN extension possible, an entry of another type, a quoted value, a SAN
 * extension OpenSSL could not print). The count is over-cautious: the five OID bytes appearing
 * by chance elsewhere in the DER only sends the certificate to the slow path.
 */
export function uriSansFromNode(cert: X509Certificate): string[] | undefined {
  const text: string | undefined | null = cert.subjectAltName;
  if (text === null) return undefined;
  if (sanOidCount(cert.raw) > (text === undefined ? 0 : 1)) return undefined;
  if (text === undefined || text === '') return [];
  const uris: string[] = [];
  for (const entry of text.split(', ')) {
    const type = PLAIN_TYPES.find((t) => entry.startsWith(t));
    if (type === undefined) return undefined;
    const value = entry.slice(type.length);
    if (value.startsWith('"') || value === '') return undefined;
    if (type === 'URI:') uris.push(value);
  }
  return uris;
}
