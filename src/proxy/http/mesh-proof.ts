/**
 * Telling the mesh's own answers from the service's on a mesh connection. An inbound that pipes
 * bytes (inbound/mode.ts) no longer rewrites the app's responses, so an app could send
 * `x-meshctl-reason: app-unavailable api` itself and make the caller's outbound fail over (or
 * count a mesh error that never happened). So the destination sidecar's own answers carry
 * `x-meshctl-proof`: a value of the TLS keying-material exporter (RFC 8446 §7.5) of that very
 * connection. Both ends of a TLS session derive the same value and nobody else can: the app
 * behind the inbound sees only plaintext, never the session's secrets. The caller's outbound
 * trusts a peer's reason only when the proof matches its own socket's exporter value, and never
 * passes the proof on to its app.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export const PROOF_HEADER = 'x-meshctl-proof';
const PROOF_LABEL = 'EXPORTER-meshctl-mesh-answer';
const PROOF_BYTES = 16;
const NO_CONTEXT = Buffer.alloc(0);

const PROOF = Symbol('meshctl.meshProof');
type Proved = TLSSocket & { [PROOF]?: string };

/**
 * The proof for answers on `socket` (hex), or undefined when it is not an established TLS
 * connection (the outbound's plain loopback side, or a socket already gone). Computed once per
 * connection: it is the same for every answer on it.
 */
export function meshProof(socket: Socket | null | undefined): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.encrypted) return undefined;
  const s = socket as Proved;
  const cached = s[PROOF];
  if (cached !== undefined) return cached;
  let proof: string;
  try {
    proof = s.exportKeyingMaterial(PROOF_BYTES, PROOF_LABEL, NO_CONTEXT).toString('hex');
  } catch {
    // Not yet (or no longer) a TLS session with keys: no proof can be made.
    return undefined;
  }
  s[PROOF] = proof;
  return proof;
}

/** Whether `value` (an `x-meshctl-proof` that came over `socket`) proves the answer is the peer proxy's. */
export function isProvenOn(value: unknown, socket: Socket | null | undefined): boolean {
  if (typeof value !== 'string') return false;
  const expected = meshProof(socket);
  return expected !== undefined && value === expected;
}

/** The same for parsed response headers. */
export function isProvenMeshAnswer(headers: IncomingHttpHeaders, socket: Socket | null | undefined): boolean {
  return isProvenOn(headers[PROOF_HEADER], socket);
}
