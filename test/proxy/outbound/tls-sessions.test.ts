/**
 * TLS session resumption on the outbound dial (src/proxy/outbound/tls-sessions.ts): a new
 * mesh connection to an endpoint resumes the last verified session, so neither side sends or
 * checks a certificate again. Node skips checkServerIdentity on a resumed session, so these
 * pin what keeps that sound: a ticket is offered only under the identity it was verified for
 * (never across upstreams sharing an address), a rotated certificate starts over with a full
 * handshake, and the server still sees, and the inbound still refuses when revoked, the
 * client certificate of the resumed session.
 */
import { X509Certificate } from 'node:crypto';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../../src/proxy/proxy.js';
import {
  defer,
  inboundPort,
  outboundPort,
  portOf,
  snapshot,
  startEchoApp,
  startProxy,
  tcpExchange,
  waitFor,
} from '../harness.js';
import type { Leaf, Pki } from '../pki.js';
import { webApiPki } from '../web-api.js';
import { serviceId } from '../../../src/ca/index.js';

/** web2: a second web leaf, as a rotated certificate of the same service. */
const certs = webApiPki({ leaves: { db: 'db', web2: 'web' } });
let pki: Pki;
let apiLeaf: Leaf;
let dbLeaf: Leaf;
let webLeaf: Leaf;
let webLeaf2: Leaf;

beforeAll(() => {
  ({ pki, apiLeaf, webLeaf } = certs());
  ({ db: dbLeaf, web2: webLeaf2 } = certs().leaves);
});

interface Seen {
  readonly reused: boolean;
  /** Serial of the client certificate the server sees on this connection. */
  readonly clientSerial: string | undefined;
}

/** A mesh server presenting `leaf` that echoes and records, per connection, whether it resumed and whose certificate it holds. */
async function echoServer(leaf: Leaf): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server: TlsServer = createTlsServer(
    {
      key: leaf.keyPem,
      cert: leaf.certPem,
      ca: [pki.rootPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (s) => {
      const cert = s.getPeerX509Certificate();
      seen.push({ reused: s.isSessionReused(), clientSerial: cert?.serialNumber });
      s.on('error', () => s.destroy());
      s.pipe(s);
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: portOf(server), seen };
}

function serialOf(leaf: Leaf): string {
  return new X509Certificate(leaf.certPem).serialNumber;
}

type EndpointStats = { tlsResumed: number; connectFailures: Record<string, number> };
function endpointStats(p: MeshProxy, upstream: string, id: string): EndpointStats {
  return (p.stats() as { upstreams: Record<string, { endpoints: Record<string, EndpointStats> }> }).upstreams[upstream]!
    .endpoints[id]!;
}

function webSnapshot(leaf: Leaf, version: number, upstreams: Parameters<typeof snapshot>[0]['upstreams']) {
  return { ...snapshot({ pki, leaf, service: 'web', appPort: 1, upstreams }), version };
}

describe('outbound TLS session resumption', () => {
  it('resumes the verified session on later connections; the server still sees the same client certificate', async () => {
    const db = await echoServer(dbLeaf);
    const web = await startProxy(
      webSnapshot(webLeaf, 1, [{ service: 'db', protocol: 'tcp', endpoints: [{ id: 'db-1', port: db.port }] }]),
    );
    for (let i = 0; i < 3; i++) {
      expect(await tcpExchange(outboundPort(web, 'db'), `ping ${i}`, { halfClose: true })).toBe(`ping ${i}`);
    }
    expect(db.seen.map((s) => s.reused)).toEqual([false, true, true]);
    expect(db.seen.map((s) => s.clientSerial)).toEqual(Array(3).fill(serialOf(webLeaf)));
    expect(endpointStats(web, 'db', 'db-1').tlsResumed).toBe(2);
  });

  it("never offers one upstream's ticket under another's identity, even at the same address", async () => {
    // One server with db's leaf, named as an endpoint of both db and api: db's sessions must
    // not let the api upstream skip the identity check it fails on every full handshake.
    const db = await echoServer(dbLeaf);
    const web = await startProxy(
      webSnapshot(webLeaf, 1, [
        { service: 'db', protocol: 'tcp', endpoints: [{ id: 'db-1', port: db.port }] },
        { service: 'api', protocol: 'tcp', endpoints: [{ id: 'api-x', port: db.port }] },
      ]),
    );
    expect(await tcpExchange(outboundPort(web, 'db'), 'a', { halfClose: true })).toBe('a');
    expect(await tcpExchange(outboundPort(web, 'db'), 'b', { halfClose: true })).toBe('b');
    expect(endpointStats(web, 'db', 'db-1').tlsResumed).toBe(1);

    for (let i = 0; i < 2; i++)
      expect(await tcpExchange(outboundPort(web, 'api'), 'secret', { halfClose: true })).toBe('');
    const api = endpointStats(web, 'api', 'api-x');
    expect(api.connectFailures).toEqual({ 'server-identity-wrong-name': 2 });
    expect(api.tlsResumed).toBe(0);
    // Nothing of the api upstream's traffic reached the server: 'secret' never came back.
  });

  it('starts over with a full handshake after its certificate rotates', async () => {
    const db = await echoServer(dbLeaf);
    const upstreams = [{ service: 'db', protocol: 'tcp' as const, endpoints: [{ id: 'db-1', port: db.port }] }];
    const web = await startProxy(webSnapshot(webLeaf, 1, upstreams));
    await tcpExchange(outboundPort(web, 'db'), 'a', { halfClose: true });
    await tcpExchange(outboundPort(web, 'db'), 'b', { halfClose: true });
    await web.apply(webSnapshot(webLeaf2, 2, upstreams));
    await tcpExchange(outboundPort(web, 'db'), 'c', { halfClose: true });
    await tcpExchange(outboundPort(web, 'db'), 'd', { halfClose: true });
    expect(db.seen).toEqual([
      { reused: false, clientSerial: serialOf(webLeaf) },
      { reused: true, clientSerial: serialOf(webLeaf) },
      { reused: false, clientSerial: serialOf(webLeaf2) },
      { reused: true, clientSerial: serialOf(webLeaf2) },
    ]);
  });

  it('a resumed connection with a since-revoked client certificate is refused by the inbound', async () => {
    const app = await startEchoApp('api:');
    const apiBase = snapshot({
      pki,
      leaf: apiLeaf,
      service: 'api',
      protocol: 'tcp',
      appPort: app.port,
      defaultIntention: 'allow',
    });
    const api = await startProxy(apiBase);
    const web = await startProxy(
      webSnapshot(webLeaf, 1, [
        { service: 'api', protocol: 'tcp', endpoints: [{ id: 'api-1', port: inboundPort(api) }] },
      ]),
    );
    expect(await tcpExchange(outboundPort(web, 'api'), 'x', { halfClose: true })).toBe('api:xbye:1');
    // The real inbound hands out tickets and lets a resumed session in.
    expect(await tcpExchange(outboundPort(web, 'api'), 'y', { halfClose: true })).toBe('api:ybye:1');
    expect(endpointStats(web, 'api', 'api-1').tlsResumed).toBe(1);

    await api.apply({ ...apiBase, version: 2, revokedSerials: [webLeaf.serial] });
    expect(await tcpExchange(outboundPort(web, 'api'), 'z', { halfClose: true })).toBe('');
    // That dial resumed (the outbound did not check anything anew), and the inbound refused it anyway.
    expect(endpointStats(web, 'api', 'api-1').tlsResumed).toBe(2);
    await waitFor(
      () =>
        (api.stats() as { inbound: { refusals: Record<string, number> } }).inbound.refusals['revoked-certificate'] ===
        1,
      'revoked-certificate counted',
    );
  });

  // TLS checks certificate dates only at a full handshake, so the proxies check them on a
  // resumed session themselves. A leaf that expires a few seconds into the test makes the case.
  async function shortLived(service: string): Promise<{ leaf: Leaf; notAfter: number }> {
    const notAfter = Math.floor(Date.now() / 1000) * 1000 + 3_000;
    const leaf = await pki.forge({
      uris: [serviceId(pki.trustDomain, service)],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(notAfter),
    });
    return { leaf, notAfter };
  }
  const pastExpiry = (notAfter: number) =>
    waitFor(() => Date.now() > notAfter + 1_000, 'the certificate to expire', 10_000);

  it('offers no ticket once the server certificate it was verified with has expired', async () => {
    const { leaf, notAfter } = await shortLived('db');
    const db = await echoServer(leaf);
    const web = await startProxy(
      webSnapshot(webLeaf, 1, [{ service: 'db', protocol: 'tcp', endpoints: [{ id: 'db-1', port: db.port }] }]),
    );
    expect(await tcpExchange(outboundPort(web, 'db'), 'a', { halfClose: true })).toBe('a');
    await pastExpiry(notAfter);
    expect(await tcpExchange(outboundPort(web, 'db'), 'late', { halfClose: true })).toBe('');
    // No ticket offered past the server certificate's NotAfter: a full handshake, which TLS refuses.
    expect(db.seen.map((s) => s.reused)).toEqual([false]);
    const ep = endpointStats(web, 'db', 'db-1');
    expect(ep.connectFailures).toEqual({ expired: 1 });
    expect(ep.tlsResumed).toBe(0);
  });

  it("the inbound refuses a resumed session whose client certificate expired since the ticket's handshake", async () => {
    const app = await startEchoApp('api:');
    const api = await startProxy(
      snapshot({ pki, leaf: apiLeaf, service: 'api', protocol: 'tcp', appPort: app.port, defaultIntention: 'allow' }),
    );
    const { leaf, notAfter } = await shortLived('web');
    const web = await startProxy(
      webSnapshot(leaf, 1, [{ service: 'api', protocol: 'tcp', endpoints: [{ id: 'api-1', port: inboundPort(api) }] }]),
    );
    expect(await tcpExchange(outboundPort(web, 'api'), 'x', { halfClose: true })).toBe('api:xbye:1');
    await pastExpiry(notAfter);
    expect(await tcpExchange(outboundPort(web, 'api'), 'y', { halfClose: true })).toBe('');
    expect(endpointStats(web, 'api', 'api-1').tlsResumed).toBe(1);
    await waitFor(
      () => (api.stats() as { inbound: { refusals: Record<string, number> } }).inbound.refusals['expired'] === 1,
      'expired counted',
    );
  });
});
