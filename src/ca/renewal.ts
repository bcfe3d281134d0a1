/**
 * When the mesh renews a certificate: at half its lifetime, for service leaves and node
 * certificates alike. Half-life leaves the other half to ride out a registry that is away,
 * and keeps revocation lists short: a revoked serial can be dropped once its certificate
 * expires, at most one lifetime after it was issued.
 */

export interface Validity {
  /** ms since the epoch */
  readonly notBefore: number;
  /** ms since the epoch */
  readonly notAfter: number;
}

/** The moment a certificate with this validity is due for renewal. */
export function renewAt(v: Validity): number {
  return v.notBefore + (v.notAfter - v.notBefore) / 2;
}

/** Whether it is due at `now` (missing counts as due). */
export function renewalDue(v: Validity | undefined, now = Date.now()): boolean {
  return v === undefined || now >= renewAt(v);
}
