/**
 * TLS session tickets that outlive a registry process: the ticket keys are derived from the CA
 * key (which every registry of the mesh holds, and nothing else does), a new set each day. So
 * an agent reconnecting after a registry restart resumes its TLS session (no certificate signed
 * or verified: 45–52 % less server CPU per connection in a bare Node measurement,
 * docs/BENCHMARKS.md) instead of a full handshake at the moment the registry is busiest. Node's
 * default is a random key per process, so after a restart every agent shook hands in full.
 * Every registry of a mesh takes the same tickets, and an agent's clients of all its registries
 * share one session (src/api/resuming-agent.ts), so a failover to another registry resumes too.
 *
 * A resumed session skips the certificate checks of a handshake, so the registry checks the
 * client certificate's dates itself on resumed connections (auth.ts), and revocation on every
 * request as before.
 */
import { hkdfSync } from 'node:crypto';

const DAY_MS = 86_400_000;
/** How long a ticket may be used (TLS 1.3 allows up to 7 days); keys change daily anyway. */
export const TICKET_LIFETIME_SECONDS = 86_400;

/** The same on every registry and every start (OpenSSL resumes only a session of its context). */
export const SESSION_ID_CONTEXT = 'meshctl-registry';

/** The 48 bytes Node's `ticketKeys` takes, for the day `now` falls in (UTC). */
export function ticketKeysFor(secret: string, now = Date.now()): Buffer {
  const day = Math.floor(now / DAY_MS);
  return Buffer.from(hkdfSync('sha256', secret, 'meshctl registry session tickets', `day ${day}`, 48));
}

/** Milliseconds until the next day's keys. */
export function msUntilNextKeys(now = Date.now()): number {
  return DAY_MS - (now % DAY_MS);
}

/**
 * The registry's TLS server options for them: the day's keys, the ticket lifetime, and a fixed
 * session context (Node's default is a hash of the command line, so a registry restarted with
 * other flags, e.g. another --bind, would refuse every session the last one made).
 */
export function ticketOptions(secret: string): {
  ticketKeys: Buffer;
  sessionTimeout: number;
  sessionIdContext: string;
} {
  return {
    ticketKeys: ticketKeysFor(secret),
    sessionTimeout: TICKET_LIFETIME_SECONDS,
    sessionIdContext: SESSION_ID_CONTEXT,
  };
}
