/**
 * Time limits for the registry's and the agent's API servers, so a slow or silent client
 * cannot hold a connection (the sidecars have their own, src/proxy/http/common.ts). Node's
 * defaults hold a client dripping its head for 60 s, checked every 30 s, and one that never
 * starts its TLS handshake for 120 s. Blocking queries are not affected: the limits are on
 * receiving the request, not on how long the answer takes.
 */
/** The whole request head must arrive within this. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** The whole request (head and body, at most the body limit) within this. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** A TLS handshake within this (the registry). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often Node checks the two above; a slow client is cut at most this much later. */
const CHECK_EVERY_MS = 1_000;

/** Options for http.createServer / https.createServer (Fastify's `http` / `https`). */
export const serverLimits = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  connectionsCheckingInterval: CHECK_EVERY_MS,
} as const;
