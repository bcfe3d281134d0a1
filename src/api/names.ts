/**
 * The naming rules, without zod: the CLI's flag parsers need them on every start, and
 * loading the schemas for a regular expression costs every command (and every proxy) ~15 MB.
 */

/** Service and node names: DNS-label-like, so they fit in SPIFFE IDs, hostnames and keys. */
export const NAME_RE = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;
export const TRUST_DOMAIN_RE = /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/;

/**
 * What a node may serve: a service name, or a pattern where `*` stands for any run of name
 * characters (`batch-*`). A lone `*` is not a pattern: "any service" is asked for by name.
 */
export const SERVICE_PATTERN_RE = /^(?=.*[a-z0-9])[a-z0-9*]([a-z0-9_.*-]{0,61}[a-z0-9*])?$/;
export const SERVICE_PATTERN_RULE =
  'a service name, or one with "*" for any run of name characters (e.g. batch-*); for every name use --any-service';

/** An address a mesh part can dial: IPv4, IPv6 (brackets allowed) or a host name. */
export const ADDRESS_RE = /^(?:[A-Za-z0-9.-]+|\[?[0-9A-Fa-f:.]+\]?)$/;
