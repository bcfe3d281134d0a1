/**
 * A reference point, not a contender: the same plain L7 hop as ref-proxy.mjs, with undici's
 * keep-alive Pool as the client instead of http-proxy + http.request (the server side is the
 * same Node http server). The `node-undici` scenario (opt-in: --scenarios …,node-undici) runs
 * it next to `node-http-proxy`, which is how a switch of the proxy's client library would be
 * justified (DESIGN.md keeps http-proxy unless a benchmark shows a better library).
 *
 *   node bench/ref-undici.mjs LISTEN_HOST LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [host, port, upHost, upPort] = process.argv.slice(2);
const pool = new Pool(`http://${upHost}:${upPort}`, { connections: 256 });
// Hop-by-hop headers are this hop's own (RFC 9110 §7.6.1); undici refuses some of them anyway.
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer'];

const server = createServer((req, res) => {
  const headers = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  const body = req.method === 'GET' || req.method === 'HEAD' ? null : req;
  pool.request({ method: req.method, path: req.url, headers, body }).then(
    (up) => {
      for (const h of HOP_BY_HOP) delete up.headers[h];
      res.writeHead(up.statusCode, up.headers);
      up.body.pipe(res);
    },
    () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  );
});
server.keepAliveTimeout = 65_000;
server.on('error', (e) => {
  process.stderr.write(`ref-undici: ${e.message}\n`);
  process.exit(1);
});
server.listen({ host, port: Number(port) });
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  void pool.close();
});
