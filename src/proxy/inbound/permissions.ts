/**
 * L7 permissions on the inbound (service-intentions `permissions`, issue 14): when the intention
 * that decides a caller (the most specific for the pair, as at the connection: authorize.ts)
 * carries permissions, the connection is let in and each request on it is decided by them. The
 * first permission that matches decides (allow or deny); a request none matches gets the mesh's
 * default intention, as in Consul. A denied request is answered `403` with
 * `intention-deny web -> api (permission 2: DELETE /admin)` (or `default-deny web -> api (no
 * permission matched)`), and the keep-alive connection stays open for the next request.
 *
 * Paths are matched after normalization (dot segments resolved, `\` as `/`, repeated slashes
 * merged, as Envoy's normalize_path and merge_slashes do), and the app gets the normalized
 * target: so `GET /api/../admin` is decided, and served, as `GET /admin`, never passed by an
 * `/api/` prefix rule and then read as `/admin` by the app.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { decidingIntention } from '../../api/intentions.js';
import { meshReason, reasonPair } from '../../errors/reasons.js';
import { compilePermissions, type MatchRequest, type PermissionDecision } from '../http/match.js';
import type { ProxySnapshot } from '../snapshot.js';

/** Why a request is refused: its reason kind and the full reason. */
export interface RequestDenial {
  readonly kind: 'intention-deny' | 'default-deny';
  readonly reason: string;
}

type Decider = (req: MatchRequest) => PermissionDecision | undefined;

/** Rules of one snapshot; made per push, compiled per caller on its first request. */
export class PermissionRules {
  readonly #snap: ProxySnapshot;
  /** Per caller: its intention's compiled permissions, or null when its intention has none. */
  readonly #byPeer = new Map<string, Decider | null>();

  constructor(snap: ProxySnapshot) {
    this.#snap = snap;
  }

  #deciderFor(peer: string): Decider | null {
    let d = this.#byPeer.get(peer);
    if (d === undefined) {
      const hit = decidingIntention(this.#snap.intentions, peer, this.#snap.service.name);
      d = hit?.permissions ? compilePermissions(hit.permissions) : null;
      this.#byPeer.set(peer, d);
    }
    return d;
  }

  /** undefined when `peer` may make this request (its intention has no permissions, or they allow it). */
  check(peer: string, method: string, target: string, headers: IncomingHttpHeaders): RequestDenial | undefined {
    const decide = this.#deciderFor(peer);
    if (decide === null) return undefined;
    const d = decide({ method, path: target, headers });
    const pair = reasonPair(peer, this.#snap.service.name);
    if (d !== undefined) return d.action === 'allow' ? undefined : denial('intention-deny', `${pair} (${d.label})`);
    return this.#snap.defaultIntention === 'allow'
      ? undefined
      : denial('default-deny', `${pair} (no permission matched)`);
  }
}

function denial(kind: RequestDenial['kind'], detail: string): RequestDenial {
  return { kind, reason: meshReason(kind, detail) };
}

// A path that may need normalizing: a dot segment, a backslash, two slashes in a row, or an
// encoded dot (which WHATWG URL parsing treats as a dot in a dot segment).
const MAYBE_UNNORMAL = /\/\.|\\|\/\/|%2e/i;

/**
 * The request target with its path normalized (query kept as sent); the target itself when it
 * is normal already (the common case: one regex test). A target that is not a path (`*`, an
 * absolute URL) is returned as it is; Node's parser has checked it is a valid target.
 */
export function normalizeTarget(target: string): string {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.startsWith('/') || !MAYBE_UNNORMAL.test(path)) return target;
  // Backslashes and repeated slashes first: `//host` or `/\\host` would read as a host to URL.
  let normal = new URL(path.replace(/\\/g, '/').replace(/\/{2,}/g, '/'), 'http://mesh.invalid').pathname;
  normal = normal.replace(/\/{2,}/g, '/');
  return q < 0 ? normal : normal + target.slice(q);
}
