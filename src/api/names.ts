/**
 * The naming rules, without zod: the CLI's flag parsers need them on every start, and
 * loading the schemas for a regular expression costs every command (and every proxy) ~15 MB.
 */

/** Service and node names: DNS-label-like, so they fit in SPIFFE IDs, hostnames and keys. */
export const NAME_RE = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;
export const TRUST_DOMAIN_RE = /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/;
