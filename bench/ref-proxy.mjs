/**
 * A reference point, not a contender: the least an http-proxy based L7 hop can cost on this
 * machine — one process, `http-proxy` with a keep-alive agent, plain HTTP to the upstream,
 * no TLS, no balancer, no stats. The `node-http-proxy` scenario (opt-in:
 * --scenarios …,node-http-proxy) runs it, so the L7 proxy's CPU per request can be read
 * against the floor its library sets.
 *
 *   node bench/ref-proxy.mjs LISTEN_HOST LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
 */
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const [host, port, upHost, upPort] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://${upHost}:${upPort}`, agent });
proxy.on('error', (_e, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.on('error', (e) => {
  process.stderr.write(`ref-proxy: ${e.message}\n`);
  process.exit(1);
});
server.listen({ host, port: Number(port) });
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
