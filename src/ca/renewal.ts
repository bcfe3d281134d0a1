/**
 * When the mesh renews a certificate: at half its lifetime, for service leaves and node
 * certificates alike. Half-life leaves the other half to ride out a registry that is away,
 * and keeps revocation lists short: a revoked serial can be dropped once its certificate
 * expires, at most one lifetime after it was issued.
 *
 * The lifetime counts from the moment the certificate was issued, not from its NotBefore:
 * NotBefore is backdated for clock skew, and counting from it would put half-life of a short
 * leaf (2 minutes, backdated 2 minutes) at the moment it is issued, so it would be renewed at
 * once and for ever.
 */

/**
 * How far every certificate the mesh makes (root, node and service leaves) is backdated, so a
 * host whose clock is up to this much behind accepts it at once (#11's clock-skew scenario runs
 * an agent 2 minutes behind). A clock further behind is refused with a message about the clock.
 * It lives here, not in root.ts, because the agent's renewal needs it and must not load the
 * CA's certificate-making code.
 */
export const CLOCK_SKEW_MS = 120_000;

export interface Validity {
  /** ms since the epoch */
  readonly notBefore: number;
  /** ms since the epoch */
  readonly notAfter: number;
}

/**
 * When a certificate with this validity was issued: its NotBefore plus the backdating, never
 * past its end. (A certificate from a registry that backdated less is then taken as issued a
 * little later than it was, so it renews a little after its true half-life, still well
 * before it expires.)
 */
export function issuedAt(v: Validity): number {
  return Math.min(v.notBefore + CLOCK_SKEW_MS, v.notAfter);
}

/** The moment a certificate with this validity is due for renewal: half-way from issue to expiry. */
export function renewAt(v: Validity): number {
  const issued = issuedAt(v);
  return issued + (v.notAfter - issued) / 2;
}

/** Whether it is due at `now` (missing counts as due). */
export function renewalDue(v: Validity | undefined, now = Date.now()): boolean {
  return v === undefined || now >= renewAt(v);
}
