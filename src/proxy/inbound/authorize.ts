/**
 * Who may come in: the verified peer's mesh identity (exactly one service SPIFFE ID in our
 * trust domain, read from Node's parsed certificate, on a certificate not revoked) and the
 * intentions of the snapshot.
 * The same decision runs at each handshake and again over open connections when a push
 * changes the intentions (index.ts), so a revoked caller is cut, not left until it reconnects.
 */
import type { X509Certificate } from 'node:crypto';
import { decidingIntention } from '../../api/intentions.js';
import { meshReason, reasonPair } from '../../errors/reasons.js';
import { validityOf } from '../../ca/peer.js';
import type { IdentityCache } from '../identity-cache.js';
import { REVOKED_CERTIFICATE, type RevokedSerials } from '../revoked.js';
import type { ProxySnapshot } from '../snapshot.js';

export type Authorization =
  | { readonly ok: true; readonly peer: string }
  /** The certificate is not a mesh service identity: `reason` is the identity failure. */
  | { readonly ok: false; readonly stage: 'identity'; readonly reason: string }
  /** A mesh service the intentions (or the default) deny: `reason` is the full mesh reason. */
  | {
      readonly ok: false;
      readonly stage: 'intention';
      readonly peer: string;
      readonly kind: IntentionDenial['kind'];
      readonly reason: string;
    };

/** Who denied: an intention that matched the pair, or the mesh's default when none did. */
export interface IntentionDenial {
  readonly kind: 'intention-deny' | 'default-deny';
  readonly reason: string;
}

/**
 * The decision for a new connection presenting `cert`. `resumed`: the TLS session was resumed,
 * so TLS did not check the certificate's dates this time (only at the ticket's full handshake).
 */
export function authorize(
  cert: X509Certificate | undefined,
  snap: ProxySnapshot,
  identities: IdentityCache,
  revoked: RevokedSerials,
  resumed = false,
): Authorization {
  const id = identities.check(cert);
  if (!id.ok) return { ok: false, stage: 'identity', reason: id.reason };
  const dates = resumed ? outOfDate(cert!) : undefined;
  if (dates !== undefined) return { ok: false, stage: 'identity', reason: dates };
  // Still valid by date and chain, but no longer anyone's identity.
  if (revoked.has(cert)) return { ok: false, stage: 'identity', reason: REVOKED_CERTIFICATE };
  const denied = intentionDenies(id.name, snap);
  if (denied !== undefined) return { ok: false, stage: 'intention', peer: id.name, ...denied };
  return { ok: true, peer: id.name };
}

/** 'expired' or 'not-yet-valid' (TLS's own reasons) when `cert` is outside its validity now. */
export function outOfDate(cert: X509Certificate, now = Date.now()): 'expired' | 'not-yet-valid' | undefined {
  const { notBefore, notAfter } = validityOf(cert);
  if (now > notAfter.getTime()) return 'expired';
  if (now < notBefore.getTime()) return 'not-yet-valid';
  return undefined;
}

/**
 * Why the snapshot's intentions deny `peer`, else undefined: `intention-deny web -> api` when an
 * intention decided, `default-deny web -> api` when none matched and the default is deny.
 */
export function intentionDenies(peer: string, snap: ProxySnapshot): IntentionDenial | undefined {
  const me = snap.service.name;
  const pair = reasonPair(peer, me);
  const hit = decidingIntention(snap.intentions, peer, me);
  if (hit === undefined) {
    return snap.defaultIntention === 'allow'
      ? undefined
      : { kind: 'default-deny', reason: meshReason('default-deny', pair) };
  }
  // L7 permissions decide each request (permissions.ts), which needs requests to see: a tcp
  // service has none, so such a caller is refused rather than let in unchecked.
  if (hit.permissions !== undefined && snap.service.protocol !== 'http')
    return {
      kind: 'intention-deny',
      reason: meshReason('intention-deny', `${pair} (L7 permissions need an http service)`),
    };
  if (hit.action === 'allow') return undefined;
  return { kind: 'intention-deny', reason: meshReason('intention-deny', pair) };
}

/**
 * Whether a push changes what authorize() decides for some peer (then open connections are
 * re-checked), or the permissions requests are decided by (which take effect per request).
 */
export function intentionsChanged(a: ProxySnapshot, b: ProxySnapshot): boolean {
  if (a.defaultIntention !== b.defaultIntention || a.service.name !== b.service.name || a.trustDomain !== b.trustDomain)
    return true;
  if (a.intentions.length !== b.intentions.length) return true;
  return a.intentions.some((x, i) => {
    const y = b.intentions[i]!;
    return (
      x.source !== y.source ||
      x.destination !== y.destination ||
      x.action !== y.action ||
      ((x.permissions !== undefined || y.permissions !== undefined) &&
        JSON.stringify(x.permissions) !== JSON.stringify(y.permissions))
    );
  });
}
