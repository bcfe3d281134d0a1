/**
 * The request hash of consistent-hash balancing and sticky splits (service-resolver
 * `hash_policies`): a header, a cookie, a query parameter or the caller's address, tried in
 * order. Every policy that yields a value is folded into the hash, as Envoy does; `terminal`
 * stops at the first one that yielded. A request for which no policy yields anything has no
 * hash (the balancer then picks at random), so an unkeyed caller never piles onto one instance.
 */
import type { SnapshotHashPolicy } from '../../snapshot.js';
import type { RouteRequest } from './route.js';

export type RequestHash = (req: RouteRequest) => number | undefined;

/** 32-bit FNV-1a of a string, continuing from `seed` (chains the values of several policies). */
export function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * A 32-bit hash with its bits spread (FNV-1a's low bits are weak for short keys): murmur3's
 * finaliser, so `hash / 2^32` is near uniform and serves as a sticky split's random number.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const all = Array.isArray(header) ? header.join('; ') : header;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function queryValue(target: string, name: string): string | undefined {
  const q = target.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(target.slice(q + 1)).get(name) ?? undefined;
}

function valueOf(p: SnapshotHashPolicy, req: RouteRequest): string | undefined {
  if (p.sourceIp) return req.source;
  const name = p.fieldValue!;
  switch (p.field) {
    case 'header': {
      const v = req.headers[name];
      return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie':
      return cookieValue(req.headers.cookie, name);
    case 'query_parameter':
      return queryValue(req.path, name);
    default:
      return undefined;
  }
}

/** undefined when there are no policies (nothing to hash on). */
export function compileHash(policies: readonly SnapshotHashPolicy[] | undefined): RequestHash | undefined {
  if (policies === undefined || policies.length === 0) return undefined;
  const ps = [...policies];
  return (req) => {
    let h: number | undefined;
    for (const p of ps) {
      const v = valueOf(p, req);
      if (v === undefined) continue;
      h = fnv1a(v, h ?? 0x811c9dc5);
      if (p.terminal) break;
    }
    return h === undefined ? undefined : mix32(h);
  };
}
