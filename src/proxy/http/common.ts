/** Small HTTP helpers both sides of the proxy use (src/proxy/http/: inbound and outbound import it, never each other). */
import { createServer, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type httpProxy from 'http-proxy';
import type { Socket } from 'node:net';
import { meshReason, REASONS, type ReasonKind } from '../../errors/reasons.js';
import { writeRawMeshAnswer } from './answer.js';
import { ignore } from '../../util/async.js';

/** Whether a request carries a body (decides replay on failover and body accounting). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/**
 * A request Node's parser refused (not HTTP/1.1, a head over the limit, a head that took too
 * long): the mesh's answer with its reason, then close. Logged by the caller if it wants to.
 */
export function clientErrorReason(err: NodeJS.ErrnoException): ReasonKind {
  return err.code === 'HPE_HEADER_OVERFLOW'
    ? 'request-head-too-large'
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 'request-header-timeout'
      : 'bad-request';
}

export function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (socket.writable && socket.bytesWritten === 0) {
    const kind = clientErrorReason(err);
    writeRawMeshAnswer(socket, REASONS[kind].status, meshReason(kind));
  }
  socket.destroy();
}

/**
 * A request head must be complete this long after its first byte, or the client gets 408 and is
 * closed: a slow client (a header byte a second) cannot hold a connection for long. Node checks
 * every connectionsCheckingInterval, so the cut comes at most that much later.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/**
 * An HTTP server that never listens: each side feeds it sockets it accepted itself (the
 * inbound one after the mTLS checks). Node tracks a server's connections (closeIdleConnections,
 * headersTimeout) only from 'listening' on, so it is told once by hand.
 */
export function fedServer(
  keepAliveTimeout: number,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  onUpgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => void,
): Server {
  const server = createServer({
    keepAliveTimeout,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: 0,
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
  });
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);
  server.on('clientError', onClientError);
  server.emit('listening');
  return server;
}

/**
 * http-proxy set up the way both sides use it: x-forwarded-* set by the caller once per
 * request (xfwd would append again on every failover attempt), errors taken through per-call
 * callbacks (the 'error' listener only keeps a stray one from throwing). Loaded on the first
 * call: a proxy whose inbound only pipes never needs http-proxy (nor follow-redirects).
 */
export function forwarder(hooks: {
  proxyReq: (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse) => void;
  proxyRes: (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => void;
  proxyReqWs: (proxyReq: ClientRequest, req: IncomingMessage) => void;
}): httpProxy {
  const proxy = (createRequire(import.meta.url)('http-proxy') as typeof httpProxy).createProxyServer({ xfwd: false });
  proxy.on('error', ignore);
  proxy.on('proxyReq', hooks.proxyReq);
  proxy.on('proxyRes', hooks.proxyRes);
  proxy.on('proxyReqWs', hooks.proxyReqWs);
  return proxy;
}
