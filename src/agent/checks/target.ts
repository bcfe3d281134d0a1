/**
 * Reading check targets: the URL of an HTTP check, the host:port of a TCP check, the command
 * of an exec check. The one place that says what a target may be: the definition-file format
 * and the `--check` spec parser refuse a bad target with `parseCheckTarget`, and the runners
 * (which meet targets from API bodies too, and turn a bad one into `critical`) read theirs
 * with `parseHttpTarget`/`parseTcpTarget`, which it is built on. So a file, a flag and the
 * scheduler cannot disagree about a target.
 */
import { isIP } from 'node:net';

export type TargetResult<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface HostPort {
  host: string;
  port: number;
}

/** The wire schema's bound on a target (api/schemas.ts); said here so the refusal names it. */
export const MAX_TARGET_LENGTH = 2048;

const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$/;
// Scheme, optional userinfo, host (bracketed IPv6 or anything else), optional port.
const HTTP_AUTHORITY_RE = /^https?:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/i;

function portFrom(text: string): TargetResult<number> {
  if (!/^\d{1,5}$/.test(text)) return { ok: false, reason: `port '${text}' is not a number` };
  const port = Number(text);
  if (port < 1 || port > 65535) return { ok: false, reason: `port ${port} is out of range (1-65535)` };
  return { ok: true, value: port };
}

/** An http:// or https:// URL with a host and, if given, a port in 1-65535. */
export function parseHttpTarget(target: string): TargetResult<URL> {
  const m = HTTP_AUTHORITY_RE.exec(target);
  if (!m)
    return { ok: false, reason: 'the URL must start with http:// or https:// (e.g. http://127.0.0.1:9000/health)' };
  if (!m[1]) return { ok: false, reason: 'the URL has no host' };
  if (m[2] !== undefined && m[2] !== '') {
    const port = portFrom(m[2]);
    if (!port.ok) return port;
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { ok: false, reason: 'the URL is malformed' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, reason: 'the URL must start with http:// or https://' };
  if (!url.hostname) return { ok: false, reason: 'the URL has no host' };
  return { ok: true, value: url };
}

/** `tcp://host:port` or `host:port`; IPv6 addresses go in brackets (`[::1]:80`). */
export function parseTcpTarget(target: string): TargetResult<HostPort> {
  const rest = target.replace(/^tcp:\/\//i, '');
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  let host: string;
  let portText: string;
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
    if (isIP(host) !== 6) return { ok: false, reason: `'${host}' in brackets is not an IPv6 address` };
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: 'expected host:port (e.g. 127.0.0.1:9000)' };
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) return { ok: false, reason: 'put an IPv6 address in brackets, e.g. [::1]:80' };
    if (host === '') return { ok: false, reason: 'the host is empty' };
    if (isIP(host) !== 4 && !HOSTNAME_RE.test(host))
      return { ok: false, reason: `'${host}' is not a valid host name or address` };
  }
  const port = portFrom(portText);
  if (!port.ok) return port;
  return { ok: true, value: { host, port: port.value } };
}

const TARGET_NAME = { http: 'URL', tcp: 'address', exec: 'command' } as const;

/**
 * A check's target as it is stored (a TCP target without its `tcp://`, IPv6 in brackets), or
 * why it is refused. The kind comes from the spec or file key; a TTL check has no target.
 */
export function parseCheckTarget(kind: 'http' | 'tcp' | 'exec', target: string): TargetResult<string> {
  const what = TARGET_NAME[kind];
  if (target.trim() === '') return { ok: false, reason: `the ${what} is empty` };
  if (target.length > MAX_TARGET_LENGTH)
    return { ok: false, reason: `the ${what} is longer than ${MAX_TARGET_LENGTH} characters` };
  if (kind === 'http') {
    const url = parseHttpTarget(target);
    return url.ok ? { ok: true, value: target } : url;
  }
  if (kind === 'tcp') {
    const hp = parseTcpTarget(target);
    return hp.ok ? { ok: true, value: formatHostPort(hp.value) } : hp;
  }
  return { ok: true, value: target };
}

/** host:port as a dialable string, with IPv6 in brackets. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The URL as it may appear in check output: credentials removed, they must not reach the registry. */
export function displayUrl(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}
