/**
 * Certificate rotation without dropping connections: a pushed snapshot with a new leaf is
 * used for new handshakes on both sides, while connections already open keep working and
 * no request fails.
 */
import { createServer as createHttpsServer } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  defer,
  get,
  inboundPort,
  keepAliveAgent,
  outboundPort,
  portOf,
  snapshot,
  startHttpApp,
  startProxy,
} from './harness.js';
import type { Leaf } from './pki.js';
import { webApiPki } from './web-api.js';

const certs = webApiPki();

const TWO_MINUTES = 120_000;
const ALLOW = [{ source: 'web', destination: 'api', action: 'allow' as const }];

/** A raw keep-alive TLS connection to a mesh port that can send several requests. */
async function meshClient(
  port: number,
  leaf: Leaf,
  host = '127.0.0.1',
): Promise<{ socket: TLSSocket; serverSerial: string; ask(path: string): Promise<string> }> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect(
      {
        host,
        port,
        ca: [certs().pki.rootPem],
        key: leaf.keyPem,
        cert: leaf.certPem,
        checkServerIdentity: () => undefined,
      },
      () => resolve(s),
    );
    s.on('error', reject);
  });
  defer(() => socket.destroy());
  socket.setEncoding('utf8');
  return {
    socket,
    serverSerial: socket.getPeerCertificate().serialNumber,
    ask: (path) =>
      new Promise((resolve, reject) => {
        let got = '';
        const onData = (d: string) => {
          got += d;
          const m = /content-length: (\d+)/i.exec(got);
          const head = got.indexOf('\r\n\r\n');
          if (m && head >= 0 && got.length >= head + 4 + Number(m[1])) {
            socket.off('data', onData);
            resolve(got);
          }
        };
        socket.on('data', onData);
        socket.once('close', () => reject(new Error(`connection closed; got ${JSON.stringify(got)}`)));
        socket.write(`GET ${path} HTTP/1.1\r\nHost: api\r\n\r\n`);
      }),
  };
}

describe('certificate rotation', () => {
  it('inbound: new handshakes present the new certificate, open connections stay up', async () => {
    const app = await startHttpApp('api-1');
    const api = await startProxy(
      snapshot({ pki: certs().pki, leaf: certs().apiLeaf, service: 'api', appPort: app.port, intentions: ALLOW }),
    );
    const port = inboundPort(api);

    const before = await meshClient(port, certs().webLeaf);
    expect(before.serverSerial).toBe(certs().apiLeaf.serial);
    expect(await before.ask('/one')).toMatch(/^HTTP\/1\.1 200/);

    const fresh = await certs().pki.leaf('api', TWO_MINUTES);
    await api.apply(
      snapshot({
        version: 2,
        pki: certs().pki,
        leaf: fresh,
        service: 'api',
        appPort: app.port,
        inboundPort: port,
        intentions: ALLOW,
      }),
    );

    // The connection made before the push still works, still under the old certificate.
    expect(await before.ask('/two')).toMatch(/^HTTP\/1\.1 200/);
    expect(before.socket.getPeerCertificate().serialNumber).toBe(certs().apiLeaf.serial);
    // A new handshake gets the new certificate.
    const after = await meshClient(port, certs().webLeaf);
    expect(after.serverSerial).toBe(fresh.serial);
    expect(await after.ask('/three')).toMatch(/^HTTP\/1\.1 200/);
    expect(app.seen.map((r) => r.url)).toEqual(['/one', '/two', '/three']);
  });

  it('outbound: under a long-lived keep-alive connection no request fails and new upstream handshakes present the new client certificate', async () => {
    // The endpoint is an https server that answers with the serial of the client certificate it saw.
    const handshakes: string[] = [];
    const observer = createHttpsServer(
      {
        key: certs().apiLeaf.keyPem,
        cert: certs().apiLeaf.certPem,
        ca: [certs().pki.rootPem],
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (req, res) => {
        const serial = (req.socket as TLSSocket).getPeerCertificate().serialNumber;
        const reply = () => res.end(serial);
        if (req.url === '/slow') setTimeout(reply, 400);
        else reply();
      },
    );
    observer.on('secureConnection', (s: TLSSocket) => handshakes.push(s.getPeerCertificate().serialNumber));
    await new Promise<void>((r) => observer.listen(0, '127.0.0.1', r));
    defer(() => {
      observer.closeAllConnections();
      return new Promise<void>((r) => observer.close(() => r()));
    });

    const upstreams = [{ service: 'api', endpoints: [{ id: 'api-1', port: portOf(observer) }] }];
    const web = await startProxy(
      snapshot({ pki: certs().pki, leaf: certs().webLeaf, service: 'web', appPort: 1, upstreams }),
    );
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);

    expect((await get(port, '/', { agent })).body).toBe(certs().webLeaf.serial);
    // A slow request in flight on a second connection across the push must complete too.
    const slow = get(port, '/slow');

    const fresh = await certs().pki.leaf('web', TWO_MINUTES);
    const pushed = web.apply(
      snapshot({
        version: 2,
        pki: certs().pki,
        leaf: fresh,
        service: 'web',
        appPort: 1,
        upstreams: upstreams.map((u) => ({ ...u, localPort: port })),
      }),
    );
    const bodies: string[] = [];
    const failures: unknown[] = [];
    for (let i = 0; i < 30; i++) {
      try {
        const r = await get(port, `/n${i}`, { agent });
        if (r.status !== 200) failures.push(r);
        bodies.push(r.body);
      } catch (e) {
        failures.push(e);
      }
      if (i === 5) await pushed;
    }
    expect(failures).toEqual([]);
    expect((await slow).body).toBe(certs().webLeaf.serial);
    // After the push has taken effect, every answer names the new certificate.
    expect(bodies.at(-1)).toBe(fresh.serial);
    expect(bodies.filter((b) => b !== certs().webLeaf.serial && b !== fresh.serial)).toEqual([]);
    // New handshakes use the new certificate; the old one is never used again once it is gone.
    const firstNew = handshakes.indexOf(fresh.serial);
    expect(firstNew).toBeGreaterThan(0);
    expect(handshakes.slice(firstNew).every((s) => s === fresh.serial)).toBe(true);
    // The app's keep-alive connection to the proxy was never dropped: one for the loop, one for /slow.
    const listener = (web.stats() as any).upstreams.api;
    expect(listener.connections.total).toBe(2);
  });

  it('both sides rotated under load along a full web → api path: no failed request', async () => {
    const app = await startHttpApp('api-1');
    const api = await startProxy(
      snapshot({
        pki: certs().pki,
        leaf: certs().apiLeaf,
        service: 'api',
        appPort: app.port,
        inboundAddress: '127.0.0.2',
        intentions: ALLOW,
      }),
    );
    const endpoint = { id: 'api-1', address: '127.0.0.2', port: inboundPort(api) };
    const web = await startProxy(
      snapshot({
        pki: certs().pki,
        leaf: certs().webLeaf,
        service: 'web',
        appPort: 1,
        upstreams: [{ service: 'api', endpoints: [endpoint] }],
      }),
    );
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(2);

    let stop = false;
    const failures: unknown[] = [];
    let ok = 0;
    const load = async () => {
      while (!stop) {
        try {
          const r = await get(port, '/', { agent });
          if (r.status === 200) ok += 1;
          else failures.push(r.status);
        } catch (e) {
          failures.push(e);
        }
      }
    };
    const loops = [load(), load()];
    const apiFresh = await certs().pki.leaf('api', TWO_MINUTES);
    const webFresh = await certs().pki.leaf('web', TWO_MINUTES);
    await api.apply(
      snapshot({
        version: 2,
        pki: certs().pki,
        leaf: apiFresh,
        service: 'api',
        appPort: app.port,
        inboundAddress: '127.0.0.2',
        inboundPort: endpoint.port,
        intentions: ALLOW,
      }),
    );
    await web.apply(
      snapshot({
        version: 2,
        pki: certs().pki,
        leaf: webFresh,
        service: 'web',
        appPort: 1,
        upstreams: [{ service: 'api', localPort: port, endpoints: [endpoint] }],
      }),
    );
    const okAtPush = ok;
    while (ok < okAtPush + 20) await new Promise((r) => setTimeout(r, 10));
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    const probe = await meshClient(endpoint.port, webFresh, '127.0.0.2');
    expect(probe.serverSerial).toBe(apiFresh.serial);
  });
});
