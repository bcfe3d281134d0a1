/**
 * Who is calling. A verified mesh node certificate (TLS client auth) makes a node principal;
 * otherwise a bearer token makes an admin or join principal. Nothing is anonymous except
 * routes marked `auth: 'none'`.
 */
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { MeshError } from '../errors/index.js';
import { peerIdentity } from '../ca/index.js';
import type { TokenStore } from './token-store.js';

export type Principal =
  { kind: 'admin'; tokenId: string } | { kind: 'node'; node: string } | { kind: 'join'; tokenId: string };

const nodeBySocket = new WeakMap<TLSSocket, Principal>();

export type AuthRequirement = 'none' | 'join' | 'any' | 'admin';

export async function resolvePrincipal(
  req: IncomingMessage,
  tokens: TokenStore,
  trustDomain: string,
): Promise<Principal | undefined> {
  const socket = req.socket as TLSSocket;
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new MeshError('MESH_ERR_UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
    const tok = await tokens.authenticate(m[1]!);
    if (!tok) throw new MeshError('MESH_ERR_UNAUTHENTICATED', 'the token is not valid (unknown, revoked or expired)');
    return tok.kind === 'admin' ? { kind: 'admin', tokenId: tok.id } : { kind: 'join', tokenId: tok.id };
  }
  if (typeof socket.getPeerCertificate === 'function') {
    // A TLS connection's peer never changes: check its certificate once, not per request
    // (parsing it is most of a blocking query's cost with many keep-alive watchers).
    const cached = nodeBySocket.get(socket);
    if (cached) return cached;
    const cert = socket.getPeerCertificate();
    if (cert && Object.keys(cert).length > 0) {
      if (!socket.authorized) {
        throw new MeshError(
          'MESH_ERR_UNAUTHENTICATED',
          `client certificate refused: ${String(socket.authorizationError ?? 'not issued by this mesh CA')}`,
        );
      }
      const id = peerIdentity(cert, { trustDomain, kind: 'node' });
      if (!id.ok) throw new MeshError('MESH_ERR_UNAUTHENTICATED', `client certificate refused: ${id.reason}`);
      const principal: Principal = { kind: 'node', node: id.name };
      nodeBySocket.set(socket, principal);
      return principal;
    }
  }
  return undefined;
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
