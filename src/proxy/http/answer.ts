/**
 * Writing HTTP answers on either side of the proxy: relaying a response that came from the
 * next hop, and the mesh's own answers, which always carry `x-meshctl-reason` so the caller
 * (and the caller's proxy) can tell them from the service's. On a mesh (TLS) connection they
 * also carry `x-meshctl-proof` (mesh-proof.ts), so the caller's proxy can tell them from an
 * app that writes the reason header itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { REASON_HEADER } from '../../errors/reasons.js';
import { countChunk } from '../relay-gc.js';
import { meshProof, PROOF_HEADER } from './mesh-proof.js';

export { REASON_HEADER };

/** The mesh answers by itself: a short text body naming the reason. */
export function writeMeshAnswer(res: ServerResponse, status: number, reason: string, close: boolean): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = `${reason}\n`;
  const proof = meshProof(res.socket);
  res.writeHead(status, {
    [REASON_HEADER]: reason,
    ...(proof === undefined ? {} : { [PROOF_HEADER]: proof }),
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** The same on a socket that has left HTTP (an upgrade request that cannot be served). */
export function writeRawMeshAnswer(socket: Socket, status: number, reason: string): void {
  if (socket.destroyed || !socket.writable) return;
  const body = `${reason}\n`;
  const proof = meshProof(socket);
  const proofLine = proof === undefined ? '' : `${PROOF_HEADER}: ${proof}\r\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${REASON_HEADER}: ${reason}\r\n${proofLine}content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const DOWNSTREAM = Symbol('meshctl.downstream');
type Relayed = IncomingMessage & { [DOWNSTREAM]?: ServerResponse };

/** The next hop dropped its response half-way: the caller's response cannot end well either. */
function onRelayedClose(this: Relayed): void {
  if (!this.complete) this[DOWNSTREAM]?.destroy();
}

/**
 * Relays `proxyRes` (headers already fixed by the caller) to `res`. Returns false, with
 * nothing written, when Node refuses a header the next hop sent; the caller answers instead.
 * `transfer-encoding: chunked` is the hop's framing, not the message's: Node frames the
 * body again for this hop (or closes, for an HTTP/1.0 client).
 */
export function relayResponse(res: ServerResponse, proxyRes: IncomingMessage): boolean {
  const h = proxyRes.headers;
  if (h['transfer-encoding'] === 'chunked') delete h['transfer-encoding'];
  try {
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, h);
  } catch {
    return false;
  }
  (proxyRes as Relayed)[DOWNSTREAM] = res;
  // 'close' comes once; on() spares the wrapper once() makes per call.
  proxyRes.on('close', onRelayedClose);
  // Counted: each chunk is a read buffer to be collected (relay-gc.ts).
  proxyRes.on('data', countChunk);
  proxyRes.pipe(res);
  return true;
}
