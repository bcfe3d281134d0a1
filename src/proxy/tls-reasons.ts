/**
 * Stable reasons for refused or failed mesh TLS connections, from Node's error codes. The
 * same strings go to logs and stats, and tests assert on them, so each is named once here.
 */
import { isMeshError } from '../errors/index.js';

/** OpenSSL verification results (socket.authorizationError / error.code) → reason. */
const VERIFY_REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown-ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown-ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown-ca',
  CERT_UNTRUSTED: 'unknown-ca',
  CERT_SIGNATURE_FAILURE: 'bad-signature',
  CERT_REJECTED: 'unknown-ca',
  INVALID_CA: 'unknown-ca',
  INVALID_PURPOSE: 'wrong-key-usage',
};

/** Handshake errors a TLS server sees → reason. */
const SERVER_HANDSHAKE_REASONS: Record<string, string> = {
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no-client-certificate',
  // Plain HTTP or other non-TLS bytes on the mesh port.
  ERR_SSL_HTTP_REQUEST: 'plaintext',
  ERR_SSL_HTTPS_PROXY_REQUEST: 'plaintext',
  ERR_SSL_WRONG_VERSION_NUMBER: 'plaintext',
  ERR_SSL_PACKET_LENGTH_TOO_LONG: 'plaintext',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'tls-version',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'tls-version',
  ECONNRESET: 'handshake-aborted',
  EPIPE: 'handshake-aborted',
  ETIMEDOUT: 'handshake-timeout',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'handshake-timeout',
};

/** Socket errors on the way to an endpoint → reason. */
const CONNECT_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection-refused',
  ECONNRESET: 'connection-reset',
  EPIPE: 'connection-reset',
  ETIMEDOUT: 'connect-timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ENOTFOUND: 'dns-failure',
  EAI_AGAIN: 'dns-failure',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'peer-wants-client-certificate',
  ERR_SSL_WRONG_VERSION_NUMBER: 'not-tls',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'tls-version',
};

function slug(code: string): string {
  return code
    .toLowerCase()
    .replace(/^err_ssl_/, '')
    .replace(/_/g, '-');
}

/** A TLS alert the peer sent us (it refused our certificate, or our hello). */
function alertReason(code: string): string | undefined {
  const m = /^ERR_SSL_(?:TLSV1|TLSV13|SSLV3)_ALERT_(.+)$/.exec(code);
  return m ? `peer-alert-${m[1]!.toLowerCase().replace(/_/g, '-')}` : undefined;
}

/**
 * Why the inbound server refused a handshake. With rejectUnauthorized, Node ends a client
 * whose certificate fails verification without a specific error code (ECONNRESET), but it
 * has set `authorizationError` on the socket first: that is the real reason.
 */
export function serverHandshakeReason(err: unknown, authorizationError?: string | Error | null): string {
  const authz = typeof authorizationError === 'string' ? authorizationError : undefined;
  if (authz) return VERIFY_REASONS[authz] ?? `tls-${slug(authz)}`;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'handshake-failed';
  return VERIFY_REASONS[code] ?? SERVER_HANDSHAKE_REASONS[code] ?? alertReason(code) ?? `tls-${slug(code)}`;
}

/** Why a connection to an endpoint failed: refused, unreachable, bad certificate or wrong server identity. */
export function connectFailureReason(err: unknown): string {
  if (isMeshError(err)) {
    // spiffeServerIdentityCheck: the server is not the upstream we dialled.
    const reason = (err.details as { reason?: unknown } | undefined)?.reason;
    return typeof reason === 'string' ? `server-identity-${reason}` : 'server-identity';
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'connect-error';
  return VERIFY_REASONS[code] ?? CONNECT_REASONS[code] ?? alertReason(code) ?? slug(code);
}
