/**
 * The upstream every scenario ends at: the smallest keep-alive HTTP/1.1 server Node has,
 * answering every request `200 ok`. One process, shared by all scenarios, so each one pays
 * the same for the app and differs only in what sits in front of it.
 *
 *   node bench/upstream.mjs HOST PORT    prints {"port":N} once listening; stops on SIGTERM
 */
import { createServer } from 'node:http';

const [host = '127.0.0.1', portArg = '0'] = process.argv.slice(2);
const body = Buffer.from('ok\n');
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

const server = createServer((req, res) => {
  // Drain any request body so the connection can carry the next request.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
// Longer than any idle gap inside a run, so the proxies' pooled connections stay up.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.on('clientError', (_e, socket) => socket.destroy());
server.on('error', (e) => {
  process.stderr.write(`upstream: ${e.message}\n`);
  process.exit(1);
});
server.listen({ host, port: Number(portArg) }, () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 })}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
