/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and must not be forwarded:
 * the app's connection to us and our pooled connection to the endpoint are different hops.
 * Both functions edit the header object in place and do nothing for the common case of a
 * request or response without such headers.
 */
import type { IncomingHttpHeaders } from 'node:http';

function dropListed(h: IncomingHttpHeaders, connection: string, keep: string): void {
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== keep && name !== 'close' && name !== 'keep-alive') delete h[name];
  }
}

/**
 * Request side. An upgrade (WebSocket) keeps `connection: upgrade` and `upgrade`. `expect` goes
 * too: Node's server has already answered `100 Continue` to the app.
 */
export function stripRequestHopByHop(h: IncomingHttpHeaders, upgrade: boolean): void {
  const connection = h.connection;
  if (connection !== undefined) {
    if (connection !== 'keep-alive' && connection !== 'close') dropListed(h, connection, upgrade ? 'upgrade' : '');
    if (!upgrade) delete h.connection;
  }
  if (h['keep-alive'] !== undefined) delete h['keep-alive'];
  if (h['proxy-connection'] !== undefined) delete h['proxy-connection'];
  if (h['proxy-authorization'] !== undefined) delete h['proxy-authorization'];
  if (h.te !== undefined && h.te !== 'trailers') delete h.te;
  if (h.trailer !== undefined) delete h.trailer;
  if (!upgrade && h.upgrade !== undefined) delete h.upgrade;
  if (h.expect !== undefined) delete h.expect;
}

/**
 * Response side: our own `connection` header for the app's hop, and a Keep-Alive hint never
 * longer than our listener keeps idle connections (the endpoint's hint may be longer). The
 * pool reads the same (possibly shortened) hint to time out its idle connection first.
 */
export function fixResponseHopByHop(h: IncomingHttpHeaders, keepAlive: boolean, ourKeepAliveSec: number): void {
  const connection = h.connection;
  if (connection !== undefined && connection !== 'keep-alive' && connection !== 'close') dropListed(h, connection, '');
  if (h['proxy-connection'] !== undefined) delete h['proxy-connection'];
  if (h['proxy-authenticate'] !== undefined) delete h['proxy-authenticate'];
  // http-proxy forwards no trailers, so announcing them would be a lie.
  if (h.trailer !== undefined) delete h.trailer;
  if (h.upgrade !== undefined) delete h.upgrade;
  h.connection = keepAlive ? 'keep-alive' : 'close';
  const hint = h['keep-alive'];
  if (hint !== undefined) {
    const m = /timeout=(\d+)/.exec(typeof hint === 'string' ? hint : hint.join(','));
    if (!m || Number(m[1]) > ourKeepAliveSec) h['keep-alive'] = `timeout=${ourKeepAliveSec}`;
  }
}
