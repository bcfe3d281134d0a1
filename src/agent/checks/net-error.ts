/** Plain words for the socket errors a check meets, so `meshctl services` says what went wrong. */

const WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  EADDRNOTAVAIL: 'address not available',
  EPIPE: 'connection closed by peer',
  ETIMEDOUT: 'connection timed out',
};

export function describeNetError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  const words = code ? WORDS[code] : undefined;
  return words ? `${words} (${err.message})` : err.message;
}
