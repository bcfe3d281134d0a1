/**
 * Reading subjectAltName entries from parsed certificates and CSRs, and the rules for the
 * DNS and IP entries a server certificate may carry. SANs are read from the DER, never
 * from Node's comma-joined `subjectaltname` text.
 */
import { isIP } from 'node:net';
import { x509 } from './x509.js';

export const SAN_OID = '2.5.29.17';

export interface SubjectAltNames {
  readonly uris: string[];
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
  /** Entries of any other type (email, directory name, registered ID, known otherNames), as `type:value`. */
  readonly others: string[];
}

export type SanReadResult =
  { ok: true; sans: SubjectAltNames } | { ok: false; reason: 'duplicate-extension' | 'unparsable' };

/**
 * Collects the SAN entries from a list of extensions (a certificate's or a CSR's).
 * `extensionsOf` is a thunk because @peculiar/x509 decodes every extension lazily on first
 * access and throws there on SAN entries it cannot represent (unknown otherName types);
 * such a SAN is reported as unparsable and the caller fails closed.
 */
export function readSubjectAltNames(extensionsOf: () => readonly x509.Extension[]): SanReadResult {
  let sanExtensions: x509.Extension[];
  try {
    sanExtensions = extensionsOf().filter((e) => e.type === SAN_OID);
  } catch {
    return { ok: false, reason: 'unparsable' };
  }
  const sans: SubjectAltNames = { uris: [], dnsNames: [], ipAddresses: [], others: [] };
  if (sanExtensions.length > 1) return { ok: false, reason: 'duplicate-extension' };
  const ext = sanExtensions[0];
  if (ext === undefined) return { ok: true, sans };
  let names: readonly x509.GeneralName[];
  try {
    names = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
  } catch {
    return { ok: false, reason: 'unparsable' };
  }
  for (const n of names) {
    if (n.type === 'url') sans.uris.push(n.value);
    else if (n.type === 'dns') sans.dnsNames.push(n.value);
    else if (n.type === 'ip') sans.ipAddresses.push(n.value);
    else sans.others.push(`${n.type}:${n.value}`);
  }
  return { ok: true, sans };
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A plain host name (no wildcard, no trailing dot), lowercase, at most 253 characters. */
export function isValidDnsName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 253 &&
    name.split('.').every((label) => DNS_LABEL.test(label))
  );
}

/** An IPv4 or IPv6 address literal. */
export function isValidIpAddress(ip: unknown): ip is string {
  return typeof ip === 'string' && isIP(ip) !== 0;
}
