/**
 * Mesh certificates in real TLS 1.3 handshakes over loopback: both sides present certs
 * from the CA, trust only the root, and check each other's SPIFFE ID with peerIdentity.
 */
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { once } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, type CertUsage } from '../../src/ca/authority.js';
import { createKeyAndCsr } from '../../src/ca/keys.js';
import { createRoot, type RootMaterial } from '../../src/ca/root.js';
import {
  peerIdentity,
  spiffeServerIdentityCheck,
  type PeerExpectation,
  type PeerIdentityResult,
} from '../../src/ca/verify.js';
import { MeshError } from '../../src/errors/index.js';
import { TD } from './helpers.js';

interface Identity {
  keyPem: string;
  certPem: string;
}

interface TestServer {
  port: number;
  seen: PeerIdentityResult[];
  clientErrors: Error[];
  close(): Promise<void>;
}

interface ClientOutcome {
  error?: Error;
  body: string;
  protocol?: string | null;
  serverIdentity?: PeerIdentityResult;
}

let root: RootMaterial;
let ca: CertificateAuthority;
const servers: TestServer[] = [];

async function identity(authority: CertificateAuthority, id: string, usage: CertUsage): Promise<Identity> {
  const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: id });
  const { certPem } = await authority.signCsr(csrPem, { expectedId: id, usage });
  return { keyPem, certPem };
}

async function startServer(me: Identity, expectClient: PeerExpectation): Promise<TestServer> {
  const seen: PeerIdentityResult[] = [];
  const clientErrors: Error[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(
    {
      key: me.keyPem,
      cert: me.certPem,
      ca: [root.certPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      const who = peerIdentity(socket.getPeerCertificate(), expectClient);
      seen.push(who);
      if (!who.ok) {
        socket.destroy();
        return;
      }
      socket.end(JSON.stringify({ authorized: socket.authorized, protocol: socket.getProtocol(), peer: who }));
    },
  );
  server.on('tlsClientError', (err) => clientErrors.push(err));
  server.on('error', (err) => clientErrors.push(err));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const s: TestServer = {
    port: (server.address() as AddressInfo).port,
    seen,
    clientErrors,
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(s);
  return s;
}

function connect(port: number, me: Identity | undefined, expectServer: PeerExpectation): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const outcome: ClientOutcome = { body: '' };
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: [root.certPem],
      ...(me ? { key: me.keyPem, cert: me.certPem } : {}),
      minVersion: 'TLSv1.3',
      checkServerIdentity: spiffeServerIdentityCheck(expectServer),
    });
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      outcome.protocol = socket.getProtocol();
      outcome.serverIdentity = peerIdentity(socket.getPeerCertificate(), expectServer);
    });
    socket.on('data', (d: string) => {
      outcome.body += d;
    });
    socket.on('end', () => socket.end());
    socket.on('error', (err) => {
      outcome.error ??= err;
      socket.destroy();
    });
    socket.on('close', () => resolve(outcome));
  });
}

/** Bounded wait for a condition, without putting a timing into the assertion. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  root = await createRoot({ trustDomain: TD });
  ca = await CertificateAuthority.load({ ...root, trustDomain: TD });
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('mutual TLS with mesh certificates', () => {
  it('completes a TLS 1.3 handshake and both sides see the right identity', async () => {
    const api = await identity(ca, `spiffe://${TD}/svc/api`, 'server');
    const web = await identity(ca, `spiffe://${TD}/svc/web`, 'client');
    const server = await startServer(api, { trustDomain: TD, kind: 'svc', name: 'web' });

    const out = await connect(server.port, web, { trustDomain: TD, kind: 'svc', name: 'api' });
    expect(out.error).toBeUndefined();
    expect(out.protocol).toBe('TLSv1.3');
    expect(out.serverIdentity).toEqual({ ok: true, id: `spiffe://${TD}/svc/api`, kind: 'svc', name: 'api' });
    expect(JSON.parse(out.body)).toEqual({
      authorized: true,
      protocol: 'TLSv1.3',
      peer: { ok: true, id: `spiffe://${TD}/svc/web`, kind: 'svc', name: 'web' },
    });
    expect(server.seen).toHaveLength(1);
  });

  it('the client refuses a server with another identity (checkServerIdentity reads the URI SAN)', async () => {
    const api = await identity(ca, `spiffe://${TD}/svc/api`, 'both');
    const web = await identity(ca, `spiffe://${TD}/svc/web`, 'both');
    const server = await startServer(api, { trustDomain: TD, kind: 'svc', name: 'web' });

    const out = await connect(server.port, web, { trustDomain: TD, kind: 'svc', name: 'db' });
    expect(out.error).toBeInstanceOf(MeshError);
    expect((out.error as MeshError).details).toEqual({ reason: 'wrong-name' });
    expect(out.body).toBe('');
  });

  it('the server refuses a client whose identity is of the wrong kind', async () => {
    const api = await identity(ca, `spiffe://${TD}/svc/api`, 'both');
    const node = await identity(ca, `spiffe://${TD}/node/web`, 'both');
    const server = await startServer(api, { trustDomain: TD, kind: 'svc', name: 'web' });

    const out = await connect(server.port, node, { trustDomain: TD, kind: 'svc', name: 'api' });
    expect(out.body).toBe('');
    expect(server.seen).toEqual([{ ok: false, reason: 'wrong-kind' }]);
  });

  it('the server refuses a client certificate from a foreign CA with the same name', async () => {
    const foreignRoot = await createRoot({ trustDomain: TD });
    const foreignCa = await CertificateAuthority.load({ ...foreignRoot, trustDomain: TD });
    const api = await identity(ca, `spiffe://${TD}/svc/api`, 'both');
    const forged = await identity(foreignCa, `spiffe://${TD}/svc/web`, 'both');
    const server = await startServer(api, { trustDomain: TD, kind: 'svc', name: 'web' });

    const out = await connect(server.port, forged, { trustDomain: TD, kind: 'svc', name: 'api' });
    await until(() => server.clientErrors.length > 0, 'the server to reject the client');
    expect(out.body).toBe('');
    expect(server.seen).toEqual([]);
  });

  it('the server refuses a client without a certificate', async () => {
    const api = await identity(ca, `spiffe://${TD}/svc/api`, 'both');
    const server = await startServer(api, { trustDomain: TD, kind: 'svc', name: 'web' });

    const out = await connect(server.port, undefined, { trustDomain: TD, kind: 'svc', name: 'api' });
    await until(() => server.clientErrors.length > 0, 'the server to reject the client');
    expect(out.body).toBe('');
    expect(server.seen).toEqual([]);
  });

  it('the client refuses a server certificate issued for client use only', async () => {
    const api = await identity(ca, `spiffe://${TD}/svc/api`, 'client');
    const web = await identity(ca, `spiffe://${TD}/svc/web`, 'client');
    const server = await startServer(api, { trustDomain: TD, kind: 'svc', name: 'web' });

    const out = await connect(server.port, web, { trustDomain: TD, kind: 'svc', name: 'api' });
    expect(out.error).toBeDefined();
    expect((out.error as NodeJS.ErrnoException).code).toBe('INVALID_PURPOSE');
    expect(out.body).toBe('');
  });
});
