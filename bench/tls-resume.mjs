/**
 * What a resumed TLS session saves the registry: a bare Node `https` server with the registry's
 * TLS settings (TLS 1.3, client certificates requested) and ticket keys, taking N connections
 * one after another (each: handshake, one request, close) first with full handshakes, then
 * resuming the client's session (as src/api/resuming-agent.ts does). Prints the server's CPU
 * per connection for each. Runnable after a build:
 *
 *   node bench/tls-resume.mjs [--connections 300]
 *
 * Stops the server it forked before it exits.
 */
import { fork } from 'node:child_process';
import https from 'node:https';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { distImport } from './lib/dist.mjs';
import { registryPki } from './lib/registry-pki.mjs';

const SELF = fileURLToPath(import.meta.url);

if (process.argv[2] === '--serve') {
  const m = JSON.parse(process.argv[3]);
  const { ticketOptions } = await distImport('registry/session-tickets.js');
  const server = https.createServer(
    {
      cert: m.cert,
      key: m.key,
      ca: [m.ca],
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      ...ticketOptions('bench'),
    },
    (req, res) => {
      if (req.url === '/cpu') {
        const c = process.cpuUsage();
        res.end(JSON.stringify(c.user + c.system));
        return;
      }
      // What the registry reads of every new connection's peer.
      const ok = req.socket.authorized && req.socket.getPeerX509Certificate() !== undefined;
      res.end(JSON.stringify({ ok, resumed: req.socket.isSessionReused() }));
    },
  );
  server.listen(0, '127.0.0.1', () => process.send?.(server.address().port));
  process.on('disconnect', () => process.exit(0));
} else {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '300' } } });
  const n = Number(values.connections);
  const { rootPem, server: srv, node } = await registryPki();
  const { certPem, keyPem } = node;
  const child = fork(SELF, ['--serve', JSON.stringify({ ca: rootPem, cert: srv.certPem, key: srv.keyPem })]);
  try {
    const port = await new Promise((resolve) => child.once('message', resolve));
    const secureContext = tls.createSecureContext({ ca: rootPem, cert: certPem, key: keyPem });
    /** One connection: handshake (resuming `session` when given), one request, close. */
    const once = (path, session) =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, secureContext, session, minVersion: 'TLSv1.3' });
        let next;
        let body = '';
        s.on('session', (x) => (next = x));
        s.on('secureConnect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n`));
        s.on('data', (d) => (body += d));
        s.on('end', () =>
          resolve({ body: body.split('\r\n\r\n')[1] ?? '', session: next, reused: s.isSessionReused() }),
        );
        s.on('error', reject);
      });
    const cpu = async () => Number((await once('/cpu')).body);
    for (let i = 0; i < 20; i++) await once('/x');
    let c0 = await cpu();
    for (let i = 0; i < n; i++) await once('/x');
    const full = ((await cpu()) - c0) / n / 1000;
    let session = (await once('/x')).session;
    let resumed = 0;
    c0 = await cpu();
    for (let i = 0; i < n; i++) {
      const r = await once('/x', session);
      if (r.reused) resumed += 1;
      if (r.session) session = r.session;
    }
    const res = ((await cpu()) - c0) / n / 1000;
    console.log(
      `server CPU per connection (handshake, one request, close; n=${n}): full handshake ${full.toFixed(2)} ms, ` +
        `resumed session ${res.toFixed(2)} ms (${resumed}/${n} resumed, ${Math.round((1 - res / full) * 100)} % less)`,
    );
  } finally {
    child.kill('SIGKILL');
  }
}
