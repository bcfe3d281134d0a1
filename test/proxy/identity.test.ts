/**
 * Forged, expired and misnamed certificates, refused on both sides: the inbound listener
 * refuses such clients, the outbound side refuses such servers. Each refusal is counted
 * under its reason, and nothing reaches the app.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../src/proxy/proxy.js';
import {
  deadPort,
  defer,
  get,
  inboundPort,
  outboundPort,
  portOf,
  snapshot,
  startHttpApp,
  startProxy,
  waitFor,
  type HttpApp,
} from './harness.js';
import type { Leaf, Pki } from './pki.js';
import { webApiPki, type BadLeaves } from './web-api.js';

const certs = webApiPki({ leaves: { db: 'db' }, bad: ['web', 'api'] });
let pki: Pki;
let apiLeaf: Leaf;
let webLeaf: Leaf;
let dbLeaf: Leaf;
let badWeb: BadLeaves;
let badApi: BadLeaves;

beforeAll(() => {
  ({ pki, apiLeaf, webLeaf } = certs());
  dbLeaf = certs().leaves.db;
  ({ web: badWeb, api: badApi } = certs().bad);
});

function refusals(p: MeshProxy): Record<string, number> {
  return (p.stats() as { inbound: { refusals: Record<string, number> } }).inbound.refusals;
}

/** Connects to the mesh port with `leaf` as client certificate, sends a request, returns what came back. */
function probe(port: number, leaf: Leaf | undefined): Promise<{ handshake: boolean; data: string }> {
  return new Promise((resolve) => {
    let handshake = false;
    let data = '';
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: [pki.rootPem],
      ...(leaf ? { key: leaf.keyPem, cert: leaf.certPem } : {}),
      checkServerIdentity: () => undefined,
    });
    s.setEncoding('utf8');
    s.on('secureConnect', () => {
      handshake = true;
      s.write('GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    });
    s.on('data', (d: string) => (data += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ handshake, data }));
  });
}

describe('inbound refuses bad clients', () => {
  let app: HttpApp;
  let api: MeshProxy;

  async function start(): Promise<void> {
    app = await startHttpApp('api-1');
    api = await startProxy(
      snapshot({ pki, leaf: apiLeaf, service: 'api', appPort: app.port, defaultIntention: 'allow' }),
    );
  }

  it('lets a good client through (control)', async () => {
    await start();
    const r = await probe(inboundPort(api), webLeaf);
    expect(r.handshake).toBe(true);
    expect(r.data).toMatch(/^HTTP\/1\.1 200/);
    expect(app.seen).toHaveLength(1);
  });

  it('refuses plaintext', async () => {
    await start();
    const got = await new Promise<string>((resolve) => {
      const s = netConnect(inboundPort(api), '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: api\r\n\r\n'));
      let data = '';
      s.on('data', (d) => (data += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(data));
    });
    expect(got).not.toContain('HTTP/1.1 200');
    await waitFor(() => refusals(api).plaintext === 1, 'plaintext refusal counted');
    expect(app.seen).toHaveLength(0);
  });

  it.each([
    ['no client certificate', undefined, 'no-client-certificate'],
    ['a foreign CA', 'foreignCa', 'unknown-ca'],
    ['an expired certificate', 'expired', 'expired'],
    ['a not-yet-valid certificate', 'notYetValid', 'not-yet-valid'],
    ['two URI SANs', 'twoUris', 'multiple-uri-sans'],
    ['another trust domain', 'wrongTrustDomain', 'wrong-trust-domain'],
    ['a CA certificate (CA:TRUE)', 'ca', 'leaf-is-ca'],
    ['a leaf with keyCertSign', 'certSign', 'leaf-signs-certificates'],
    ['a leaf with cRLSign', 'crlSign', 'leaf-signs-certificates'],
    ['a leaf without digitalSignature', 'noDigitalSignature', 'leaf-without-digital-signature'],
    ['a leaf without keyUsage', 'noKeyUsage', 'leaf-without-digital-signature'],
  ] as const)('refuses %s', async (_what, kind, reason) => {
    await start();
    const r = await probe(inboundPort(api), kind === undefined ? undefined : badWeb[kind]);
    expect(r.data).toBe('');
    await waitFor(
      () => refusals(api)[reason] === 1,
      `refusal "${reason}" counted (got ${JSON.stringify(refusals(api))})`,
    );
    expect(Object.values(refusals(api)).reduce((a, b) => a + b, 0)).toBe(1);
    expect(app.seen).toHaveLength(0);
    expect(app.connections).toBe(0);
  });

  it('refuses TLS 1.2', async () => {
    await start();
    const r = await new Promise<{ handshake: boolean }>((resolve) => {
      let handshake = false;
      const s = tlsConnect({
        host: '127.0.0.1',
        port: inboundPort(api),
        ca: [pki.rootPem],
        key: webLeaf.keyPem,
        cert: webLeaf.certPem,
        maxVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined,
      });
      s.on('secureConnect', () => (handshake = true));
      s.on('error', () => undefined);
      s.on('close', () => resolve({ handshake }));
    });
    expect(r.handshake).toBe(false);
    await waitFor(
      () => refusals(api)['tls-version'] === 1,
      `tls-version refusal counted (got ${JSON.stringify(refusals(api))})`,
    );
    expect(app.connections).toBe(0);
  });

  it('drops a client that never finishes the handshake', async () => {
    app = await startHttpApp('api-1');
    api = await startProxy(
      snapshot({ pki, leaf: apiLeaf, service: 'api', appPort: app.port, defaultIntention: 'allow' }),
      { handshakeTimeoutMs: 300 },
    );
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect(inboundPort(api), '127.0.0.1');
      s.on('error', () => undefined);
      s.on('close', () => resolve(true));
    });
    expect(closed).toBe(true);
    await waitFor(() => refusals(api)['handshake-timeout'] === 1, 'handshake timeout counted');
  });

  it('refuses a tcp-mode client denied by intention by closing, without an HTTP answer', async () => {
    app = await startHttpApp('api-1');
    api = await startProxy(
      snapshot({ pki, leaf: apiLeaf, service: 'api', protocol: 'tcp', appPort: app.port, defaultIntention: 'deny' }),
    );
    const r = await probe(inboundPort(api), webLeaf);
    expect(r.handshake).toBe(true);
    expect(r.data).toBe('');
    expect(refusals(api)['default-deny web -> api']).toBe(1);
    expect(app.connections).toBe(0);
  });
});

describe('outbound refuses bad servers', () => {
  /** A TLS server on the endpoint's address presenting `leaf`, counting what reaches it. */
  async function impostor(leaf: Leaf): Promise<{ port: number; requests: () => number }> {
    let requests = 0;
    const server = createTlsServer({ key: leaf.keyPem, cert: leaf.certPem, minVersion: 'TLSv1.3' }, (s) => {
      s.on('error', () => undefined);
      s.on('data', () => (requests += 1));
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sockets = new Set<import('node:net').Socket>();
    server.on('secureConnection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    defer(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    return { port: portOf(server), requests: () => requests };
  }

  it.each([
    ["another service's identity", () => dbLeaf, 'server-identity-wrong-name'],
    ['a foreign CA', () => badApi.foreignCa, 'unknown-ca'],
    ['an expired certificate', () => badApi.expired, 'expired'],
    ['two URI SANs', () => badApi.twoUris, 'server-identity-multiple-uri-sans'],
    ['another trust domain', () => badApi.wrongTrustDomain, 'server-identity-wrong-trust-domain'],
    ['a CA certificate (CA:TRUE)', () => badApi.ca, 'server-identity-leaf-is-ca'],
    ['a leaf with keyCertSign', () => badApi.certSign, 'server-identity-leaf-signs-certificates'],
    ['a leaf with cRLSign', () => badApi.crlSign, 'server-identity-leaf-signs-certificates'],
    [
      'a leaf without digitalSignature',
      () => badApi.noDigitalSignature,
      'server-identity-leaf-without-digital-signature',
    ],
    ['a leaf without keyUsage', () => badApi.noKeyUsage, 'server-identity-leaf-without-digital-signature'],
  ])('refuses a server presenting %s (L7: 502 connect-failure)', async (_what, leaf, reason) => {
    const bad = await impostor(leaf());
    const web = await startProxy(
      snapshot({
        pki,
        leaf: webLeaf,
        service: 'web',
        appPort: 1,
        upstreams: [{ service: 'api', endpoints: [{ id: 'api-x', port: bad.port }] }],
      }),
    );
    const r = await get(outboundPort(web, 'api'), '/', { method: 'POST', body: 'secret' });
    expect(r.status).toBe(502);
    expect(r.headers['x-meshctl-reason']).toBe('connect-failure api');
    const ep = (web.stats() as any).upstreams.api.endpoints['api-x'];
    expect(ep.connectFailures).toEqual({ [reason]: 1 });
    expect(bad.requests()).toBe(0);
  });

  /**
   * web's upstream `api` whose only route splits every request to service `canary` (a policy
   * target in another service): the attempt checks the server's identity as `canary`, the
   * target's service, not as the upstream's.
   */
  async function webSplittingToCanary(endpointPort: number): Promise<MeshProxy> {
    const canaryEndpoint = { id: 'canary-1.n1', node: 'n1', address: '127.0.0.1', port: endpointPort, weight: 1 };
    return startProxy(
      snapshot({
        pki,
        leaf: webLeaf,
        service: 'web',
        appPort: 1,
        upstreams: [
          {
            service: 'api',
            endpoints: [{ id: 'api-x', port: await deadPort() }],
            policy: {
              routes: [{ name: 'service-splitter api', splits: [{ weight: 100, target: 'canary' }] }],
              targets: [
                {
                  name: 'canary',
                  service: 'canary',
                  loadBalancer: { policy: 'round_robin' },
                  endpoints: [canaryEndpoint],
                },
              ],
            },
          },
        ],
      }),
    );
  }

  it("checks a split target's own service identity when the target is another service", async () => {
    const app = await startHttpApp('canary-1');
    const canary = await startProxy(
      snapshot({
        pki,
        leaf: await pki.leaf('canary'),
        service: 'canary',
        appPort: app.port,
        defaultIntention: 'allow',
      }),
    );
    const web = await webSplittingToCanary(inboundPort(canary));
    const r = await get(outboundPort(web, 'api'), '/');
    expect(r.status).toBe(200);
    expect(app.seen).toHaveLength(1);
  });

  it("refuses a split target's server presenting the upstream's identity instead of the target's", async () => {
    const bad = await impostor(apiLeaf);
    const web = await webSplittingToCanary(bad.port);
    const r = await get(outboundPort(web, 'api'), '/');
    expect(r.status).toBe(502);
    expect(r.headers['x-meshctl-reason']).toMatch(/^connect-failure canary/);
    expect(bad.requests()).toBe(0);
  });

  it('refuses a server presenting another identity on an L4 upstream too', async () => {
    const bad = await impostor(dbLeaf);
    const web = await startProxy(
      snapshot({
        pki,
        leaf: webLeaf,
        service: 'web',
        appPort: 1,
        upstreams: [{ service: 'api', protocol: 'tcp', endpoints: [{ id: 'api-x', port: bad.port }] }],
      }),
    );
    const got = await new Promise<string>((resolve) => {
      const s = netConnect(outboundPort(web, 'api'), '127.0.0.1', () => s.write('secret'));
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('error', () => undefined);
      s.on('close', () => resolve(data));
    });
    expect(got).toBe('');
    expect((web.stats() as any).upstreams.api.endpoints['api-x'].connectFailures).toEqual({
      'server-identity-wrong-name': 1,
    });
    expect(bad.requests()).toBe(0);
  });
});
