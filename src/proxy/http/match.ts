/**
 * Request matching for traffic policy, shared by the outbound routes (service-router) and the
 * inbound's L7 permissions (service-intentions): path (exact, prefix, regex), methods, headers
 * (exact, prefix, suffix, regex, present; invert) and query parameters. Compiled once per
 * snapshot into one closure per rule, so a request costs string compares, and regexes run on
 * re2js (linear time: no input can make a pattern backtrack). A regex matches the whole value,
 * as Envoy's and Consul's do.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { RE2JS as Re2js } from 're2js';
import type { SnapshotHeaderMatch, SnapshotPermission, SnapshotRouteMatch } from '../snapshot.js';

export interface MatchRequest {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export type RequestMatcher = (req: MatchRequest) => boolean;

const always: RequestMatcher = () => true;

let re2: typeof Re2js | undefined;

/**
 * re2js, loaded by the first regex a snapshot compiles: most proxies match no regex, and a
 * proxy's modules without it take ≈ 2 MB less RSS after a GC (docs/BENCHMARKS.md "RSS"). Its
 * CommonJS build, so that compiling stays synchronous.
 */
function re2js(): typeof Re2js {
  return (re2 ??= (createRequire(import.meta.url)('re2js') as { RE2JS: typeof Re2js }).RE2JS);
}

function fullMatch(pattern: string): (s: string) => boolean {
  const re = re2js().compile(pattern);
  const prefix = literalPrefix(pattern);
  // Most requests miss most routes: a string compare rules them out before the regex runs.
  if (prefix.length > 0) return (s) => s.startsWith(prefix) && re.matches(s);
  return (s) => re.matches(s);
}

/**
 * The literal text every full match of `pattern` starts with: its leading characters up to the
 * first metacharacter, less the last one when a quantifier follows it (`ab*` guarantees only
 * `a`). Empty when the pattern has an alternation anywhere (`a|b` starts with neither) or starts
 * with something that is not a plain character.
 */
export function literalPrefix(pattern: string): string {
  if (pattern.includes('|')) return '';
  let i = pattern.startsWith('^') ? 1 : 0;
  let out = '';
  for (; i < pattern.length; i++) {
    const c = pattern[i]!;
    if ('\\.[](){}*+?^$'.includes(c)) break;
    out += c;
  }
  const next = pattern[i];
  if (next === '*' || next === '?' || next === '{') out = out.slice(0, -1);
  return out;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

function headerValue(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
}

function queryValue(target: string, name: string): string | undefined {
  const q = target.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(target.slice(q + 1)).get(name) ?? undefined;
}

function valueTest(m: {
  present?: true | undefined;
  exact?: string | undefined;
  prefix?: string | undefined;
  suffix?: string | undefined;
  regex?: string | undefined;
}): (v: string | undefined) => boolean {
  if (m.exact !== undefined) {
    const x = m.exact;
    return (v) => v === x;
  }
  if (m.prefix !== undefined) {
    const x = m.prefix;
    return (v) => v !== undefined && v.startsWith(x);
  }
  if (m.suffix !== undefined) {
    const x = m.suffix;
    return (v) => v !== undefined && v.endsWith(x);
  }
  if (m.regex !== undefined) {
    const re = fullMatch(m.regex);
    return (v) => v !== undefined && re(v);
  }
  return (v) => v !== undefined;
}

export function headerMatcher(h: SnapshotHeaderMatch): RequestMatcher {
  const test = valueTest(h);
  const name = h.name;
  return h.invert ? (req) => !test(headerValue(req.headers, name)) : (req) => test(headerValue(req.headers, name));
}

/** One matcher for a route's (or a permission's) conditions: all must hold. */
export function compileMatch(m: SnapshotRouteMatch | undefined): RequestMatcher {
  if (!m) return always;
  const parts: RequestMatcher[] = [];
  if (m.pathExact !== undefined) {
    const x = m.pathExact;
    parts.push((r) => pathOf(r.path) === x);
  } else if (m.pathPrefix !== undefined) {
    const x = m.pathPrefix;
    parts.push((r) => pathOf(r.path).startsWith(x));
  } else if (m.pathRegex !== undefined) {
    const re = fullMatch(m.pathRegex);
    parts.push((r) => re(pathOf(r.path)));
  }
  if (m.methods) {
    const set = new Set(m.methods);
    parts.push((r) => set.has(r.method));
  }
  for (const h of m.headers ?? []) parts.push(headerMatcher(h));
  for (const q of m.query ?? []) {
    const test = valueTest(q);
    const name = q.name;
    parts.push((r) => test(queryValue(r.path, name)));
  }
  if (parts.length === 0) return always;
  if (parts.length === 1) return parts[0]!;
  return (r) => {
    for (let i = 0; i < parts.length; i++) if (!parts[i]!(r)) return false;
    return true;
  };
}

/** The request target after a prefix rewrite: `prefix` (matched) replaced by `rewrite`, query kept. */
export function rewritePrefix(target: string, prefix: string, rewrite: string): string {
  if (!target.startsWith(prefix)) return target;
  const rest = target.slice(prefix.length);
  // `/v2/` → `/` on `/v2/users` gives `/users`, never `//users`.
  if (rewrite.endsWith('/') && rest.startsWith('/')) return rewrite + rest.slice(1);
  return rewrite + rest;
}

/** The permission that decided a request: its 1-based number and how reasons name it. */
export interface PermissionDecision {
  readonly action: 'allow' | 'deny';
  readonly number: number;
  /** `permission 2: DELETE /admin`, for `x-meshctl-reason: intention-deny web -> api (permission 2: DELETE /admin)`. */
  readonly label: string;
}

/**
 * An intention's L7 permissions as one decision function: the first rule that matches decides;
 * undefined when none does (the caller then applies the mesh's default intention).
 */
export function compilePermissions(
  perms: readonly SnapshotPermission[],
): (req: MatchRequest) => PermissionDecision | undefined {
  const rules = perms.map((p, i) => {
    const what = [p.methods?.join(',') ?? '', p.pathExact ?? p.pathPrefix ?? p.pathRegex ?? '']
      .filter(Boolean)
      .join(' ');
    const decision: PermissionDecision = {
      action: p.action,
      number: i + 1,
      label: `permission ${i + 1}${what ? `: ${what}` : ''}`,
    };
    return { test: compileMatch(p), decision };
  });
  return (req) => {
    for (const r of rules) if (r.test(req)) return r.decision;
    return undefined;
  };
}
