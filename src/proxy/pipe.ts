/**
 * The L4 byte pipe between two sockets, used by the inbound side (mesh peer ↔ app) and the
 * outbound side (app ↔ endpoint). Both sockets must have been made with allowHalfOpen, so
 * that a FIN from one side becomes end() on the other while the other direction keeps
 * flowing; the pair is torn down together on any error or abort.
 */
import type { Socket } from 'node:net';
import { countChunk } from './relay-gc.js';

/** Ends the pipe: both sockets are destroyed (idempotent). */
function teardown(a: Socket, b: Socket): void {
  a.destroy();
  b.destroy();
}

/**
 * Pipes `a` and `b` both ways with backpressure. A side that closes without having ended
 * cleanly in both directions (reset, error, destroy) takes the other side down with it; a
 * side that closes cleanly leaves the other to flush what it still has and end by itself.
 */
export function pipeSockets(a: Socket, b: Socket): void {
  a.setNoDelay(true);
  b.setNoDelay(true);
  const onError = () => teardown(a, b);
  a.on('error', onError);
  b.on('error', onError);
  a.once('close', () => {
    if (!a.readableEnded || !a.writableFinished) b.destroy();
  });
  b.once('close', () => {
    if (!b.readableEnded || !b.writableFinished) a.destroy();
  });
  // Counted: each chunk is a read buffer to be collected (relay-gc.ts).
  a.on('data', countChunk);
  b.on('data', countChunk);
  a.pipe(b);
  b.pipe(a);
}
