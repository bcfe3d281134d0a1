/**
 * How the inbound of a service serves an allowed connection: as a byte pipe to the app, or
 * through HTTP parsing per request. Parsing costs the most of anything the inbound does (Node's
 * HTTP server and client for every request, on top of the caller's outbound doing the same;
 * docs/BENCHMARKS.md, "the inbound as a byte pipe"), so the inbound parses only when a rule of
 * the snapshot needs to see requests on this side:
 *   - the access log is on (one line per request, with the caller's trace), or
 *   - an intention for this service (or `*`) carries L7 `permissions` (each request is decided
 *     by them).
 * Otherwise an http service is piped like a tcp one: the mTLS handshake, the identity and the
 * intention check still decide each connection, and request figures come from the callers'
 * outbound sidecars, which see every request anyway. A tcp service is always piped.
 */
import type { ProxySnapshot } from '../snapshot.js';

export type InboundMode = 'pipe' | 'http';

/** Whether an intention for `service` (or `*`) carries L7 permissions. */
export function hasL7Permissions(snap: Pick<ProxySnapshot, 'intentions'>, service: string): boolean {
  for (const x of snap.intentions)
    if (x.permissions !== undefined && (x.destination === service || x.destination === '*')) return true;
  return false;
}

export function inboundMode(snap: ProxySnapshot): InboundMode {
  if (snap.service.protocol !== 'http') return 'pipe';
  if (snap.accessLog?.enabled === true) return 'http';
  return hasL7Permissions(snap, snap.service.name) ? 'http' : 'pipe';
}
