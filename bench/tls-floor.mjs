/**
 * What Node itself costs per held mTLS connection: a bare `https` server (TLS 1.3, client
 * certificates requested, as the registry's) holding N requests open from one client process,
 * with its RSS, V8 heap and CPU before and after. The registry's RSS per watcher is this plus its
 * own request state. Runnable after a build:
 *
 *   node bench/tls-floor.mjs [--connections 2000]
 *
 * Stops the server it forked before it exits.
 */
import { fork } from 'node:child_process';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { registryPki } from './lib/registry-pki.mjs';

const SELF = fileURLToPath(import.meta.url);

if (process.argv[2] === '--serve') {
  // The server: every request but /status is held for two minutes.
  const m = JSON.parse(process.argv[3]);
  let held = 0;
  const server = https.createServer(
    { cert: m.cert, key: m.key, ca: [m.ca], requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
    (req, res) => {
      if (req.url === '/status') {
        const u = process.memoryUsage();
        const c = process.cpuUsage();
        res.end(JSON.stringify({ held, rss: u.rss, heap: u.heapUsed, cpuUs: c.user + c.system }));
        return;
      }
      held += 1;
      const t = setTimeout(() => res.end('{}'), 120_000);
      req.on('close', () => {
        clearTimeout(t);
        held -= 1;
      });
    },
  );
  server.listen(0, '127.0.0.1', () => process.send?.(server.address().port));
  process.on('disconnect', () => process.exit(0));
} else {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '2000' } } });
  const n = Number(values.connections);
  const { rootPem, server: srv, node } = await registryPki();
  const { certPem, keyPem } = node;
  const child = fork(SELF, ['--serve', JSON.stringify({ ca: rootPem, cert: srv.certPem, key: srv.keyPem })]);
  try {
    const port = await new Promise((resolve) => child.once('message', resolve));
    const tlsOpts = { ca: rootPem, cert: certPem, key: keyPem, checkServerIdentity: () => undefined };
    const agent = new https.Agent({ keepAlive: true, ...tlsOpts });
    const get = (path, a) =>
      new Promise((resolve, reject) => {
        const r = https.get({ host: '127.0.0.1', port, path, agent: a, ...tlsOpts }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        });
        r.on('error', reject);
      });
    const status = async () => JSON.parse(await get('/status', false));
    const before = await status();
    for (let i = 0; i < n; i++) {
      get('/hold', agent).catch(() => undefined);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
    }
    const deadline = Date.now() + 120_000;
    let s = await status();
    while (s.held < n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      s = await status();
    }
    // Let the handshakes' garbage go before reading the figures.
    await new Promise((r) => setTimeout(r, 2000));
    const after = await status();
    const mb = (b) => (b / 1048576).toFixed(1);
    console.log(
      `${after.held} held mTLS connections: server RSS ${mb(before.rss)} → ${mb(after.rss)} MB, ` +
        `${((after.rss - before.rss) / after.held / 1024).toFixed(1)} kB per connection ` +
        `(V8 heap ${((after.heap - before.heap) / after.held / 1024).toFixed(1)} kB of it); ` +
        `server CPU ${((after.cpuUs - before.cpuUs) / after.held / 1000).toFixed(2)} ms per connection (handshake and one request)`,
    );
    agent.destroy();
  } finally {
    child.kill('SIGKILL');
  }
}
