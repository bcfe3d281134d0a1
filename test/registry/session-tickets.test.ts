/**
 * TLS sessions that survive a registry restart (src/registry/session-tickets.ts) and the client
 * side that keeps its session through refused connections (src/api/resuming-agent.ts), over
 * real TLS 1.3 sockets; clients sharing one session across the registries of a mesh (failover
 * resumes); and the date and revocation checks a resumed session gets instead of the handshake's.
 */
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResumingAgent, SharedTlsSession } from '../../src/api/resuming-agent.js';
import { nodeId, serviceId } from '../../src/ca/index.js';
import { resolvePrincipal, type RevocationCheck } from '../../src/registry/auth.js';
import { msUntilNextKeys, ticketKeysFor, ticketOptions } from '../../src/registry/session-tickets.js';
import type { TokenStore } from '../../src/registry/token-store.js';
import { makePki, TD, type Leaf, type Pki } from '../proxy/pki.js';

let pki: Pki;
let server: { certPem: string; keyPem: string };
let node: Leaf;
const open: https.Server[] = [];

beforeAll(async () => {
  pki = await makePki();
  server = await pki.ca.issueServerCertificate({
    spiffeId: serviceId(TD, 'meshctl-registry'),
    ipAddresses: ['127.0.0.1'],
  });
  node = await pki.forge({
    uris: [nodeId(TD, 'n1')],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
  });
});
afterAll(async () => {
  for (const s of open) await new Promise((r) => s.close(r));
});

/** A registry-like TLS server: who is calling (resolvePrincipal) and whether the session was resumed. */
async function serve(secret: string, port = 0, revocations?: RevocationCheck): Promise<https.Server> {
  const s = https.createServer(
    {
      cert: server.certPem,
      key: server.keyPem,
      ca: [pki.rootPem],
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      // The registry's own ticket settings (src/registry/server.ts uses the same).
      ...ticketOptions(secret),
    },
    (req, res) => {
      const resumed = (req.socket as import('node:tls').TLSSocket).isSessionReused();
      resolvePrincipal(req, {} as TokenStore, TD, revocations).then(
        (p) => res.end(JSON.stringify({ resumed, principal: p })),
        (e: Error) => res.end(JSON.stringify({ resumed, refused: e.message })),
      );
    },
  );
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  open.push(s);
  return s;
}

const stop = (s: https.Server) =>
  new Promise<void>((r) => {
    s.closeAllConnections();
    s.close(() => r());
  });

function get(
  agent: https.Agent,
  port: number,
): Promise<{ resumed?: boolean; principal?: { node: string }; refused?: string } | Error> {
  return new Promise((resolve) => {
    https
      .get({ host: '127.0.0.1', port, path: '/', agent, headers: { connection: 'close' } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(JSON.parse(t)));
      })
      .on('error', (e) => resolve(e));
  });
}

describe('session tickets across a registry restart', () => {
  it('resume on a restarted server with the same secret, after refused connections, with the resuming agent only', async () => {
    const tlsOpts = {
      ca: pki.rootPem,
      cert: node.certPem,
      key: node.keyPem,
      keepAlive: false,
      minVersion: 'TLSv1.3' as const,
    };
    const resuming = new ResumingAgent(tlsOpts);
    const plain = new https.Agent(tlsOpts);
    let s = await serve('the ca key');
    const port = (s.address() as AddressInfo).port;
    for (const a of [resuming, plain])
      expect(await get(a, port)).toMatchObject({ resumed: false, principal: { node: 'n1' } });
    await stop(s);
    // The registry is down: both clients' connections are refused.
    for (const a of [resuming, plain]) expect(await get(a, port)).toBeInstanceOf(Error);
    s = await serve('the ca key', port);
    // Node's own agent dropped its session with the refused connection; ours kept it.
    expect(await get(resuming, port)).toMatchObject({ resumed: true, principal: { node: 'n1' } });
    expect(await get(plain, port)).toMatchObject({ resumed: false, principal: { node: 'n1' } });
    await stop(s);
    // Another mesh's registry (another CA key) does not take the ticket: a full handshake.
    s = await serve('another ca key', port);
    expect(await get(resuming, port)).toMatchObject({ resumed: false });
    await stop(s);
    resuming.destroy();
    plain.destroy();
  });

  it('derives the same keys on every registry for a day, other keys the next day', () => {
    const day = 20_000 * 86_400_000;
    expect(ticketKeysFor('k', day + 1).equals(ticketKeysFor('k', day + 86_399_000))).toBe(true);
    expect(ticketKeysFor('k', day).equals(ticketKeysFor('k', day + 86_400_000))).toBe(false);
    expect(ticketKeysFor('k', day).equals(ticketKeysFor('other', day))).toBe(false);
    expect(ticketKeysFor('k', day)).toHaveLength(48);
    expect(msUntilNextKeys(day + 1000)).toBe(86_399_000);
  });

  it("refuses a resumed session whose certificate expired since (the handshake's date check is skipped)", async () => {
    const shortLived = await pki.forge({
      uris: [nodeId(TD, 'n2')],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 2_000),
    });
    const agent = new ResumingAgent({
      ca: pki.rootPem,
      cert: shortLived.certPem,
      key: shortLived.keyPem,
      keepAlive: false,
    });
    const s = await serve('the ca key');
    const port = (s.address() as AddressInfo).port;
    expect(await get(agent, port)).toMatchObject({ resumed: false, principal: { node: 'n2' } });
    // X.509 times have whole seconds: wait past the expiry for sure.
    await new Promise((r) => setTimeout(r, 3_500));
    const r = await get(agent, port);
    expect(r).toMatchObject({ resumed: true });
    expect((r as { refused?: string }).refused).toMatch(
      /client certificate refused: expired at .* \(resumed TLS session\)/,
    );
    await stop(s);
    agent.destroy();
  });

  it('clients sharing one session resume it on another registry of the mesh; each their own does not', async () => {
    const tlsOpts = { ca: pki.rootPem, cert: node.certPem, key: node.keyPem, keepAlive: false };
    // Two registries of one mesh: the same ticket secret (the CA key), other ports.
    const a = await serve('the ca key');
    const b = await serve('the ca key');
    const [pa, pb] = [a, b].map((s) => (s.address() as AddressInfo).port) as [number, number];
    const shared = new SharedTlsSession();
    const [toA, toB] = [new ResumingAgent(tlsOpts, shared), new ResumingAgent(tlsOpts, shared)];
    const [ownA, ownB] = [new ResumingAgent(tlsOpts), new ResumingAgent(tlsOpts)];
    for (const x of [toA, ownA]) expect(await get(x, pa)).toMatchObject({ resumed: false, principal: { node: 'n1' } });
    // Failover: registry b has never seen this client; the shared session resumes there.
    expect(await get(toB, pb)).toMatchObject({ resumed: true, principal: { node: 'n1' } });
    expect(await get(ownB, pb)).toMatchObject({ resumed: false, principal: { node: 'n1' } });
    // Another mesh's registry does not take it; the full handshake's session replaces it.
    const other = await serve('another ca key');
    const po = (other.address() as AddressInfo).port;
    expect(await get(toB, po)).toMatchObject({ resumed: false, principal: { node: 'n1' } });
    expect(await get(toA, po)).toMatchObject({ resumed: true });
    for (const s of [a, b, other]) await stop(s);
    for (const x of [toA, toB, ownA, ownB]) x.destroy();
  });

  it('another registry refuses a resumed session of a revoked node or of a certificate expired since', async () => {
    const shortLived = await pki.forge({
      uris: [nodeId(TD, 'n3')],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 2_000),
    });
    const revoked = new Set<string>();
    const a = await serve('the ca key');
    const b = await serve('the ca key', 0, revoked);
    const [pa, pb] = [a, b].map((s) => (s.address() as AddressInfo).port) as [number, number];
    const mk = (leaf: Leaf, shared: SharedTlsSession) =>
      new ResumingAgent({ ca: pki.rootPem, cert: leaf.certPem, key: leaf.keyPem, keepAlive: false }, shared);
    const nodeSession = new SharedTlsSession();
    const [nodeA, nodeB] = [mk(node, nodeSession), mk(node, nodeSession)];
    expect(await get(nodeA, pa)).toMatchObject({ resumed: false, principal: { node: 'n1' } });
    revoked.add(new X509Certificate(node.certPem).serialNumber);
    const r = await get(nodeB, pb);
    expect(r).toMatchObject({ resumed: true });
    expect((r as { refused?: string }).refused).toMatch(/the certificate of node 'n1' \(serial .*\) has been revoked/);

    const shortSession = new SharedTlsSession();
    const [shortA, shortB] = [mk(shortLived, shortSession), mk(shortLived, shortSession)];
    expect(await get(shortA, pa)).toMatchObject({ resumed: false, principal: { node: 'n3' } });
    // X.509 times have whole seconds: wait past the expiry for sure.
    await new Promise((res) => setTimeout(res, 3_500));
    const e = await get(shortB, pb);
    expect(e).toMatchObject({ resumed: true });
    expect((e as { refused?: string }).refused).toMatch(
      /client certificate refused: expired at .* \(resumed TLS session\)/,
    );
    for (const s of [a, b]) await stop(s);
    for (const x of [nodeA, nodeB, shortA, shortB]) x.destroy();
  });
});
