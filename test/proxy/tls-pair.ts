/**
 * A real TLS 1.3 connection on loopback between two mesh leaves (both ends in one process), for
 * tests of what the two ends of a mesh connection share (the keying-material exporter).
 */
import { createServer, connect, type TLSSocket } from 'node:tls';
import { defer } from './harness.js';
import type { Pki } from './pki.js';

export interface TlsPair {
  /** The accepting end (a destination's inbound). */
  readonly server: TLSSocket;
  /** The dialling end (a caller's outbound). */
  readonly client: TLSSocket;
}

export async function tlsPair(pki: Pki): Promise<TlsPair> {
  const [a, b] = await Promise.all([pki.leaf('api'), pki.leaf('web')]);
  const accepted: TLSSocket[] = [];
  const server = createServer({
    cert: a.certPem,
    key: a.keyPem,
    ca: [pki.rootPem],
    requestCert: true,
    minVersion: 'TLSv1.3',
  });
  const secure = new Promise<TLSSocket>((resolve) => server.once('secureConnection', resolve));
  server.on('secureConnection', (s: TLSSocket) => accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const client = connect({
    host: '127.0.0.1',
    port,
    cert: b.certPem,
    key: b.keyPem,
    ca: [pki.rootPem],
    checkServerIdentity: () => undefined,
    minVersion: 'TLSv1.3',
  });
  defer(
    () =>
      new Promise<void>((r) => {
        client.destroy();
        for (const s of accepted) s.destroy();
        server.close(() => r());
      }),
  );
  await new Promise<void>((resolve, reject) => {
    client.once('secureConnect', resolve);
    client.once('error', reject);
  });
  return { server: await secure, client };
}
