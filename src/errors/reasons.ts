/**
 * The mesh's reasons: every answer a mesh proxy makes itself (rather than relaying the
 * service's) carries `x-meshctl-reason: <kind> <detail>`, e.g. `no-healthy-endpoints api` or
 * `intention-deny web -> api`. The kind is the stable part: metrics count mesh errors by kind,
 * the caller's proxy decides on failover by kind, and docs/REASONS.md lists every kind (a test
 * keeps the two in step). The detail names the service or the pair and may change.
 *
 * On L4 (tcp) there is no answer to write: the connection is closed, and the same kind is
 * counted and logged.
 */

export const REASON_HEADER = 'x-meshctl-reason';

export type ReasonSender = 'outbound' | 'inbound' | 'both';

export interface ReasonSpec {
  /** HTTP status of the mesh's answer. */
  readonly status: number;
  /** Which side of the mesh answers with it: the caller's sidecar (outbound) or the destination's (inbound). */
  readonly sender: ReasonSender;
  /**
   * Whether the caller's outbound may send the same request to another endpoint when it meets
   * this: only when no byte of the request reached an app and another endpoint could answer
   * differently. Safe whatever the method, so it is failover, not a retry.
   */
  readonly failover: boolean;
  /** Also used on L4 connections (which are closed instead of answered). */
  readonly l4: boolean;
}

export const REASONS = {
  'no-healthy-endpoints': { status: 503, sender: 'outbound', failover: false, l4: true },
  'connect-failure': { status: 502, sender: 'outbound', failover: true, l4: true },
  'upstream-reset': { status: 502, sender: 'outbound', failover: false, l4: false },
  'upstream-bad-response': { status: 502, sender: 'outbound', failover: false, l4: false },
  'request-timeout': { status: 504, sender: 'outbound', failover: false, l4: false },
  'retry-budget-exhausted': { status: 503, sender: 'outbound', failover: false, l4: false },
  'circuit-open': { status: 503, sender: 'outbound', failover: false, l4: false },
  'intention-deny': { status: 403, sender: 'inbound', failover: false, l4: true },
  'default-deny': { status: 403, sender: 'inbound', failover: false, l4: true },
  'app-unavailable': { status: 502, sender: 'inbound', failover: true, l4: true },
  'app-reset': { status: 502, sender: 'inbound', failover: false, l4: false },
  'app-bad-response': { status: 502, sender: 'inbound', failover: false, l4: false },
  'unsupported-upgrade': { status: 501, sender: 'both', failover: false, l4: false },
  'bad-request': { status: 400, sender: 'both', failover: false, l4: false },
  'request-head-too-large': { status: 431, sender: 'both', failover: false, l4: false },
  'request-header-timeout': { status: 408, sender: 'both', failover: false, l4: false },
} as const satisfies Record<string, ReasonSpec>;

export type ReasonKind = keyof typeof REASONS;

/** The metrics key for a reason nobody defined (a peer cannot grow our counters with made-up reasons). */
export const OTHER_REASON = 'other';

/** What mesh errors are counted under: a defined kind, or `other`. */
export type MeshErrorKind = ReasonKind | typeof OTHER_REASON;

/** The header value: the kind, then what it is about (a service, `source -> destination`). */
export function meshReason(kind: ReasonKind, detail?: string): string {
  return detail === undefined || detail === '' ? kind : `${kind} ${detail}`;
}

/**
 * A caller and a destination in a reason's detail, `web -> api`: spelled as the `intention`
 * commands print a pair (`Denied: web -> api`), so a refusal reads like the rule behind it.
 */
export function reasonPair(source: string, destination: string): string {
  return `${source} -> ${destination}`;
}

/** `app-unavailable api` → `app-unavailable`: the reason's kind as written, known or not. */
export function reasonKind(reason: string): string {
  const i = reason.indexOf(' ');
  return i < 0 ? reason : reason.slice(0, i);
}

export function isReasonKind(kind: string): kind is ReasonKind {
  return Object.hasOwn(REASONS, kind);
}

/** The spec of a reason string's kind, or undefined for a kind the mesh does not define. */
export function reasonSpec(reason: string): ReasonSpec | undefined {
  const kind = reasonKind(reason);
  return isReasonKind(kind) ? REASONS[kind] : undefined;
}

const PEER_KINDS: ReadonlySet<string> = new Set(
  Object.entries(REASONS)
    .filter(([, s]) => s.sender !== 'outbound')
    .map(([k]) => k),
);

/**
 * The metrics key of an `x-meshctl-reason` that came over the wire from a peer: one of the kinds
 * an inbound proxy sends, or `other`.
 */
export function peerReasonKind(reason: string): MeshErrorKind {
  const kind = reasonKind(reason);
  return PEER_KINDS.has(kind) ? (kind as ReasonKind) : OTHER_REASON;
}
