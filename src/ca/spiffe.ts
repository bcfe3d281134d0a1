/**
 * SPIFFE IDs of the mesh and the naming rules behind them. Service and node names follow
 * the same rule everywhere (registry schemas, CLI flags, definition files), so the rule
 * lives here once and everything else reuses NAME_PATTERN / isValidName.
 *
 * IDs have exactly two shapes:
 *   spiffe://<trust-domain>/svc/<service>
 *   spiffe://<trust-domain>/node/<node>
 */
import { MeshError } from '../errors/index.js';

export type SpiffeKind = 'svc' | 'node';

export interface SpiffeId {
  readonly trustDomain: string;
  readonly kind: SpiffeKind;
  readonly name: string;
}

/**
 * Service and node names: 1-63 characters, lowercase letters, digits, '-', '_' and '.',
 * starting and ending with a letter or digit. Short enough for a DNS label and a CN,
 * and free of every character that would need escaping in a URI, a DN or a store key.
 */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;
export const NAME_RULE =
  "1-63 characters of lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit";

/**
 * Trust domains use the SPIFFE character set (lowercase letters, digits, '.', '-', '_');
 * we also require a letter or digit at both ends, so "." or ".." can never be a trust domain.
 */
export const TRUST_DOMAIN_PATTERN = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/;
export const MAX_TRUST_DOMAIN_LENGTH = 255;
export const TRUST_DOMAIN_RULE =
  "up to 255 characters of lowercase letters, digits, '.', '-' and '_', starting and ending with a letter or digit";

export const SPIFFE_SCHEME = 'spiffe://';

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

export function isValidTrustDomain(td: unknown): td is string {
  return typeof td === 'string' && td.length <= MAX_TRUST_DOMAIN_LENGTH && TRUST_DOMAIN_PATTERN.test(td);
}

function checkTrustDomain(td: string): void {
  if (!isValidTrustDomain(td)) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `invalid trust domain ${JSON.stringify(td)}: must be ${TRUST_DOMAIN_RULE}`,
    );
  }
}

function makeId(td: string, kind: SpiffeKind, name: string): string {
  checkTrustDomain(td);
  if (!isValidName(name)) {
    const what = kind === 'svc' ? 'service' : 'node';
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `invalid ${what} name ${JSON.stringify(name)}: must be ${NAME_RULE}`,
    );
  }
  return `${SPIFFE_SCHEME}${td}/${kind}/${name}`;
}

/** `spiffe://<td>/svc/<name>`; throws MESH_ERR_INVALID_ARGUMENT on a bad trust domain or name. */
export function serviceId(td: string, name: string): string {
  return makeId(td, 'svc', name);
}

/** `spiffe://<td>/node/<name>`; throws MESH_ERR_INVALID_ARGUMENT on a bad trust domain or name. */
export function nodeId(td: string, name: string): string {
  return makeId(td, 'node', name);
}

/** `spiffe://<td>`: the trust domain's own ID, carried by the CA root. */
export function trustDomainId(td: string): string {
  checkTrustDomain(td);
  return `${SPIFFE_SCHEME}${td}`;
}

const ID_SHAPE = /^spiffe:\/\/([^/]*)\/(svc|node)\/([^/]*)$/;

/**
 * Parses a mesh SPIFFE ID, or returns undefined for anything else. Strict on purpose:
 * no case folding, no percent-decoding, no port, user info, query, fragment, trailing
 * slash or extra path segment — an ID matches only when it is byte-for-byte canonical,
 * so comparing the strings is the same as comparing the identities.
 */
export function parseSpiffeId(uri: unknown): SpiffeId | undefined {
  if (typeof uri !== 'string') return undefined;
  const m = ID_SHAPE.exec(uri);
  if (!m) return undefined;
  const [, trustDomain, kind, name] = m as unknown as [string, string, SpiffeKind, string];
  if (!isValidTrustDomain(trustDomain) || !isValidName(name)) return undefined;
  return { trustDomain, kind, name };
}
