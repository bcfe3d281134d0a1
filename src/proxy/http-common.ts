/** Small HTTP helpers both sides of the proxy use (each side still imports only this, not the other side). */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Whether a request carries a body (decides replay on failover and body accounting). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** A request that is not valid HTTP/1.1: answer as Node would by default, then close. */
export function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (socket.writable && socket.bytesWritten === 0) {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }
  socket.destroy();
}

/** A no-op error listener, shared so no closure is made per socket. */
export function ignore(): void {}
