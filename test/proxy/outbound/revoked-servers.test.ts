/**
 * Revoked leaves at the outbound (src/proxy/outbound/revoked-servers.ts): a server whose leaf
 * is on the snapshot's revokedSerials is refused though its chain, dates and identity are good
 * — on a full handshake and on a resumed session alike — so the request fails over to another
 * instance; a push that adds the serial closes the connections already open to it, and one
 * that takes it off lets the server in again.
 */
import { createServer as createTlsServer } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MeshProxy } from '../../../src/proxy/proxy.js';
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
  tcpExchange,
  waitFor,
  type HttpApp,
  type UpstreamSpec,
} from '../harness.js';
import type { Leaf, Pki } from '../pki.js';
import { webApiPki } from '../web-api.js';

/** removedApi: a second api leaf, as a removed node's instance of api would hold. */
const certs = webApiPki({ leaves: { removedApi: 'api' } });
let pki: Pki;
let apiLeaf: Leaf;
let webLeaf: Leaf;
let removedApiLeaf: Leaf;

beforeAll(() => {
  ({ pki, apiLeaf, webLeaf } = certs());
  removedApiLeaf = certs().leaves.removedApi;
});

type EndpointStats = { connections: { active: number }; connectFailures: Record<string, number>; tlsResumed: number };
function endpointStats(p: MeshProxy, id: string): EndpointStats {
  return (p.stats() as { upstreams: Record<string, { endpoints: Record<string, EndpointStats> }> }).upstreams.api!
    .endpoints[id]!;
}

/** An api instance: its app and its sidecar presenting `leaf`. */
async function apiInstance(name: string, leaf: Leaf): Promise<{ app: HttpApp; port: number }> {
  const app = await startHttpApp(name);
  const proxy = await startProxy(snapshot({ pki, leaf, service: 'api', appPort: app.port, defaultIntention: 'allow' }));
  return { app, port: inboundPort(proxy) };
}

function web(version: number, upstreams: UpstreamSpec[], revokedSerials: string[] = []) {
  return { ...snapshot({ pki, leaf: webLeaf, service: 'web', appPort: 1, upstreams }), version, revokedSerials };
}

describe('outbound refuses servers with revoked leaves', () => {
  it("fails over from an instance presenting a removed node's leaf; nothing reaches its app", async () => {
    const removed = await apiInstance('api-removed', removedApiLeaf);
    const good = await apiInstance('api-good', apiLeaf);
    const upstreams: UpstreamSpec[] = [
      {
        service: 'api',
        endpoints: [
          { id: 'api-removed', port: removed.port },
          { id: 'api-good', port: good.port },
        ],
      },
    ];
    const w = await startProxy(web(1, upstreams, [removedApiLeaf.serial]));
    for (let i = 0; i < 6; i++) {
      const r = await get(outboundPort(w, 'api'), '/');
      expect(r.status).toBe(200);
      expect(r.body).toContain('api-good');
    }
    expect(removed.app.seen).toHaveLength(0);
    expect(endpointStats(w, 'api-removed').connectFailures['revoked-certificate']).toBeGreaterThan(0);
  });

  it('answers 502 connect-failure when the only instance presents a revoked leaf', async () => {
    const removed = await apiInstance('api-removed', removedApiLeaf);
    const w = await startProxy(
      web(1, [{ service: 'api', endpoints: [{ id: 'api-removed', port: removed.port }] }], [removedApiLeaf.serial]),
    );
    const r = await get(outboundPort(w, 'api'), '/', { method: 'POST', body: 'secret' });
    expect(r.status).toBe(502);
    expect(r.headers['x-meshctl-reason']).toBe('connect-failure api');
    expect(endpointStats(w, 'api-removed').connectFailures).toEqual({ 'revoked-certificate': 1 });
    expect(removed.app.seen).toHaveLength(0);
  });

  it('closes an open keep-alive connection when a push revokes its server, and lets it in again once off the list', async () => {
    const removed = await apiInstance('api-removed', removedApiLeaf);
    const upstreams: UpstreamSpec[] = [{ service: 'api', endpoints: [{ id: 'api-removed', port: removed.port }] }];
    const w = await startProxy(web(1, upstreams));
    const agent = keepAliveAgent();
    expect((await get(outboundPort(w, 'api'), '/', { agent })).status).toBe(200);
    expect(endpointStats(w, 'api-removed').connections.active).toBe(1);

    await w.apply(web(2, upstreams, [removedApiLeaf.serial]));
    await waitFor(() => endpointStats(w, 'api-removed').connections.active === 0, 'the open connection closed');
    const refused = await get(outboundPort(w, 'api'), '/', { agent });
    expect(refused.status).toBe(502);
    expect(removed.app.seen).toHaveLength(1);

    await w.apply(web(3, upstreams, []));
    expect((await get(outboundPort(w, 'api'), '/', { agent })).status).toBe(200);
    expect(removed.app.seen).toHaveLength(2);
  });

  it('refuses a resumed session with a server whose leaf was revoked since the ticket was issued', async () => {
    // A plain mesh server that echoes and records whether each connection it accepts resumed a session.
    const reused: boolean[] = [];
    const server = createTlsServer(
      {
        key: removedApiLeaf.keyPem,
        cert: removedApiLeaf.certPem,
        ca: [pki.rootPem],
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (s) => {
        reused.push(s.isSessionReused());
        s.on('error', () => s.destroy());
        s.pipe(s);
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const upstreams: UpstreamSpec[] = [
      { service: 'api', protocol: 'tcp', endpoints: [{ id: 'api-removed', port: portOf(server) }] },
    ];
    const w = await startProxy(web(1, upstreams));
    expect(await tcpExchange(outboundPort(w, 'api'), 'a', { halfClose: true })).toBe('a');
    expect(await tcpExchange(outboundPort(w, 'api'), 'b', { halfClose: true })).toBe('b');
    expect(endpointStats(w, 'api-removed').tlsResumed).toBe(1);

    await w.apply(web(2, upstreams, [removedApiLeaf.serial]));
    expect(await tcpExchange(outboundPort(w, 'api'), 'secret', { halfClose: true })).toBe('');
    // That dial offered the ticket kept from 'b' and resumed, so no certificate came with it:
    // the refusal rests on the serial kept with the ticket (without it, 'secret' came back).
    expect(reused).toEqual([false, true]);
    expect(endpointStats(w, 'api-removed').connectFailures).toEqual({ 'revoked-certificate': 1 });
  });
});
