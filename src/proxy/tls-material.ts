/**
 * TLS settings of both mesh directions, built from a snapshot's `tls` block. TLS 1.3 only
 * (DESIGN §3); the peer's SPIFFE ID is checked by the caller (inbound) or by
 * checkServerIdentity (outbound), because Node's own check ignores URI SANs.
 */
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { MeshError } from '../errors/index.js';
import type { ProxySnapshot } from './snapshot.js';

type TlsBlock = ProxySnapshot['tls'];

/** Key, chain and trust for one side of a mesh connection. */
export function secureContextOptions(tls: TlsBlock): SecureContextOptions {
  return {
    key: tls.keyPem,
    cert: tls.certPem,
    ca: tls.rootsPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

/**
 * Builds the secure context once up front, so a key that does not match its certificate (or
 * an unreadable root) refuses the snapshot before anything changes, instead of failing
 * later inside a handshake.
 */
export function buildSecureContext(tls: TlsBlock): SecureContext {
  try {
    return createSecureContext(secureContextOptions(tls));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new MeshError('MESH_ERR_BAD_REQUEST', `invalid proxy snapshot: tls: ${why}`, {
      hint: 'tls.keyPem must be the private key of tls.certPem and tls.rootsPem readable CA certificates; the proxy keeps its previous snapshot.',
      cause: e,
    });
  }
}

/** True when the key, certificate or roots differ (a rotation). */
export function tlsChanged(a: TlsBlock, b: TlsBlock): boolean {
  return (
    a.certPem !== b.certPem ||
    a.keyPem !== b.keyPem ||
    a.rootsPem.length !== b.rootsPem.length ||
    a.rootsPem.some((r, i) => r !== b.rootsPem[i])
  );
}
