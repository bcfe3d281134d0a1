/**
 * Who is calling. A verified mesh node certificate (TLS client auth) makes a node principal;
 * otherwise a bearer token makes an admin or join principal. Nothing is anonymous except
 * routes marked `auth: 'none'`.
 */
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { MeshError } from '../errors/index.js';
import { IdentityCache } from '../ca/index.js';
import { validityOf } from '../ca/peer.js';
import type { TokenStore } from './token-store.js';

export type Principal =
  | { kind: 'admin'; tokenId: string }
  | { kind: 'node'; node: string; serial: string }
  | { kind: 'join'; tokenId: string };

/** What the registry refuses on every request, whatever it cached about the connection. */
export interface RevocationCheck {
  has(serial: string): boolean;
}

const nodeBySocket = new WeakMap<TLSSocket, Principal & { kind: 'node' }>();

/**
 * Node identities by certificate fingerprint, per trust domain (one in practice): an agent that
 * reconnects — after a failover, an idle timeout — shows the same certificate again. Sized for
 * a large fleet: an entry is a fingerprint and a small result, about 300 bytes.
 */
const NODE_IDENTITY_ENTRIES = 20_000;
const nodeIdentities = new Map<string, IdentityCache>();

function nodeIdentityCache(trustDomain: string): IdentityCache {
  let c = nodeIdentities.get(trustDomain);
  if (!c) {
    c = new IdentityCache({ trustDomain, kind: 'node' }, NODE_IDENTITY_ENTRIES);
    nodeIdentities.set(trustDomain, c);
  }
  return c;
}

export type AuthRequirement = 'none' | 'join' | 'any' | 'admin';

/** Set on the error for a token that is malformed, unknown or has the wrong secret: a guess, for the rate limit. */
export const WRONG_TOKEN = 'wrong-token';

export function isWrongToken(e: unknown): boolean {
  return e instanceof MeshError && (e.details as { why?: unknown } | undefined)?.why === WRONG_TOKEN;
}

export async function resolvePrincipal(
  req: IncomingMessage,
  tokens: TokenStore,
  trustDomain: string,
  revocations?: RevocationCheck,
): Promise<Principal | undefined> {
  const socket = req.socket as TLSSocket;
  const header = req.headers.authorization;
  if (header !== undefined) return tokenPrincipal(header, tokens);
  if (typeof socket.getPeerX509Certificate === 'function') {
    // A TLS connection's peer never changes: check its certificate once, not per request
    // (reading it is most of a blocking query's cost with many keep-alive watchers).
    // Revocation can happen at any time, so that is checked on every request.
    const cached = nodeBySocket.get(socket) ?? nodePrincipal(socket, trustDomain);
    if (cached) {
      refuseRevoked(cached, revocations);
      nodeBySocket.set(socket, cached);
      return cached;
    }
  }
  return undefined;
}

async function tokenPrincipal(header: string, tokens: TokenStore): Promise<Principal> {
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m)
    throw new MeshError('MESH_ERR_UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"', {
      details: { why: WRONG_TOKEN },
    });
  const r = await tokens.check(m[1]!);
  if (r.ok) return r.kind === 'admin' ? { kind: 'admin', tokenId: r.id } : { kind: 'join', tokenId: r.id };
  switch (r.reason) {
    case 'invalid':
      throw new MeshError('MESH_ERR_UNAUTHENTICATED', 'the token is not valid (unknown id or wrong secret)', {
        details: { why: WRONG_TOKEN },
      });
    case 'revoked':
      throw new MeshError('MESH_ERR_UNAUTHENTICATED', `token ${r.id} has been revoked`);
    case 'expired':
      throw new MeshError('MESH_ERR_TOKEN_EXPIRED', `${r.record.kind} token ${r.id} expired at ${r.record.expiresAt}`);
    case 'used-up':
      throw new MeshError(
        'MESH_ERR_TOKEN_USED_UP',
        `join token ${r.id} has been used up (${r.record.uses ?? 0} of ${r.record.maxUses} joins)`,
      );
  }
}

function nodePrincipal(socket: TLSSocket, trustDomain: string): (Principal & { kind: 'node' }) | undefined {
  // Node's own parse of the certificate (a handle on OpenSSL's), not the plain-object copy
  // getPeerCertificate() builds with every field: the identity needs the URI SAN and serial.
  const cert = socket.getPeerX509Certificate();
  if (!cert) return undefined;
  if (!socket.authorized) {
    throw new MeshError(
      'MESH_ERR_UNAUTHENTICATED',
      `client certificate refused: ${String(socket.authorizationError ?? 'not issued by this mesh CA')}`,
    );
  }
  if (socket.isSessionReused()) {
    // A resumed TLS session (session-tickets.ts) skipped the handshake's certificate checks: the
    // chain was checked when the session was made, the dates are checked here.
    const { notBefore, notAfter } = validityOf(cert);
    const now = Date.now();
    if (now < notBefore.getTime() || now > notAfter.getTime())
      throw new MeshError(
        'MESH_ERR_UNAUTHENTICATED',
        `client certificate refused: ${now > notAfter.getTime() ? `expired at ${notAfter.toISOString()}` : `not valid before ${notBefore.toISOString()}`} (resumed TLS session)`,
      );
  }
  const id = nodeIdentityCache(trustDomain).check(cert);
  if (!id.ok) throw new MeshError('MESH_ERR_UNAUTHENTICATED', `client certificate refused: ${id.reason}`);
  return { kind: 'node', node: id.name, serial: cert.serialNumber };
}

/** A removed node's certificates stay cryptographically valid until they expire; the list says no. */
function refuseRevoked(p: Principal & { kind: 'node' }, revocations: RevocationCheck | undefined): void {
  if (!revocations?.has(p.serial)) return;
  throw new MeshError(
    'MESH_ERR_UNAUTHENTICATED',
    `the certificate of node '${p.node}' (serial ${p.serial}) has been revoked`,
    { hint: 'The node was removed from the mesh; join it again with a new join token (`meshctl token create`).' },
  );
}

export function authorize(p: Principal | undefined, need: AuthRequirement): void {
  if (need === 'none') return;
  if (!p) throw new MeshError('MESH_ERR_UNAUTHENTICATED', 'authentication required');
  if (need === 'join') {
    if (p.kind !== 'join' && p.kind !== 'admin')
      throw new MeshError('MESH_ERR_FORBIDDEN', 'joining needs a join token');
    return;
  }
  if (p.kind === 'join') throw new MeshError('MESH_ERR_FORBIDDEN', 'a join token can only be used to join a node');
  if (need === 'admin' && p.kind !== 'admin') throw new MeshError('MESH_ERR_FORBIDDEN', 'this needs the admin token');
}

/** Nodes may act only on themselves; the admin may act on any node. */
export function assertActsFor(p: Principal | undefined, node: string): void {
  if (p?.kind === 'admin') return;
  if (p?.kind === 'node' && p.node === node) return;
  throw new MeshError('MESH_ERR_FORBIDDEN', `only node '${node}' itself or the admin may do this`);
}
