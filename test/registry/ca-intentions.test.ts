import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { createKeyAndCsr, peerIdentity, serviceId } from '../../src/ca/index.js';
import { rawCsr } from '../ca/helpers.js';
import type { RegistryClient } from '../../src/api/registry-client.js';

describe('registry CA signing', () => {
  let t: TestRegistry;
  let node: RegistryClient;
  beforeAll(async () => {
    t = await startTestRegistry();
    node = (await t.joinNode('host-a')).client;
    await node.heartbeat('host-a', 30);
    await node.register({ name: 'api', port: 9000 });
  });
  afterAll(async () => {
    await t.close();
  });

  it('signs a CSR for a service registered on the calling node: one URI SAN, 24h, backdated a minute', async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: serviceId('mesh.local', 'api') });
    const before = Date.now();
    const res = await node.sign('api', csrPem);
    const cert = new X509Certificate(res.certificate);
    expect(peerIdentity(cert, { trustDomain: 'mesh.local', kind: 'svc', name: 'api' })).toMatchObject({
      ok: true,
      name: 'api',
    });
    expect(cert.verify(new X509Certificate(t.caPem).publicKey)).toBe(true);
    const nb = Date.parse(cert.validFrom);
    const na = Date.parse(cert.validTo);
    expect(before - nb).toBeGreaterThanOrEqual(50_000);
    expect(na - nb).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(na - nb).toBeLessThanOrEqual(24 * 3600_000 + 120_000);
  });

  it('refuses a service that is not registered on the node', async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: serviceId('mesh.local', 'billing') });
    await expect(node.sign('billing', csrPem)).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
  });

  it("refuses a CSR carrying another service's ID", async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: serviceId('mesh.local', 'billing') });
    await expect(node.sign('api', csrPem)).rejects.toMatchObject({ code: 'MESH_ERR_CSR_INVALID' });
  });

  it('refuses a CSR with two URI SANs', async () => {
    const csr = await rawCsr({
      sans: [
        { type: 'url', value: serviceId('mesh.local', 'api') },
        { type: 'url', value: serviceId('mesh.local', 'billing') },
      ],
    });
    const err = await node.sign('api', csr).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MESH_ERR_CSR_INVALID' });
    expect(String((err as Error).message)).toMatch(/URI/);
  });

  it('refuses garbage instead of a CSR', async () => {
    await expect(node.sign('api', 'hello')).rejects.toMatchObject({ code: 'MESH_ERR_CSR_INVALID' });
  });

  it('serves its API with a certificate chained to the mesh CA, over TLS 1.3', async () => {
    const info = await new Promise<{ protocol: string | null; issuer: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: new URL(t.url).port, path: '/v1/health', ca: t.caPem, agent: false },
        (res) => {
          const sock = res.socket as import('node:tls').TLSSocket;
          resolve({ protocol: sock.getProtocol(), issuer: sock.getPeerCertificate().issuer.CN as string });
          res.resume();
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(info.protocol).toBe('TLSv1.3');
    expect(info.issuer).toContain('mesh.local');
  });
});

describe('registry intentions', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry({ defaultIntention: 'deny' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates, lists, checks and deletes intentions', async () => {
    expect(await t.admin.checkIntention('web', 'api')).toMatchObject({ action: 'deny' });
    expect((await t.admin.checkIntention('web', 'api')).matched).toBeUndefined();
    await t.admin.putIntention('web', 'api', 'allow', 'web calls api');
    await t.admin.putIntention('*', 'api', 'deny');
    expect(await t.admin.checkIntention('web', 'api')).toMatchObject({
      action: 'allow',
      matched: { source: 'web', destination: 'api' },
    });
    expect(await t.admin.checkIntention('batch', 'api')).toMatchObject({
      action: 'deny',
      matched: { source: '*', destination: 'api' },
    });
    const list = await t.admin.intentions();
    expect(list.defaultAction).toBe('deny');
    expect(list.intentions.map((i) => `${i.source}->${i.destination}:${i.action}`).sort()).toEqual([
      '*->api:deny',
      'web->api:allow',
    ]);
    await t.admin.deleteIntention('web', 'api');
    expect(await t.admin.checkIntention('web', 'api')).toMatchObject({ action: 'deny' });
    await expect(t.admin.deleteIntention('web', 'api')).rejects.toMatchObject({ code: 'MESH_ERR_NOT_FOUND' });
  });

  it('refuses bad intention bodies', async () => {
    await expect(t.admin.putIntention('web', 'api', 'maybe' as 'allow')).rejects.toMatchObject({
      code: 'MESH_ERR_BAD_REQUEST',
    });
    await expect(t.admin.putIntention('Web!', 'api', 'allow')).rejects.toMatchObject({ code: 'MESH_ERR_BAD_REQUEST' });
  });
});

describe('registry watch stream', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('streams changes under a prefix as newline-delimited JSON', async () => {
    const url = new URL('/v1/watch?prefix=intentions/', t.url);
    const lines: Array<{ revision?: number; events?: Array<{ type: string; key: string }>; heartbeat?: number }> = [];
    const got = new Promise<void>((resolve, reject) => {
      const req = https.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          ca: t.caPem,
          agent: false,
          headers: { authorization: `Bearer ${t.init.adminToken}` },
        },
        (res) => {
          let buf = '';
          res.on('data', (c: Buffer) => {
            buf += c.toString();
            let i: number;
            while ((i = buf.indexOf('\n')) >= 0) {
              lines.push(JSON.parse(buf.slice(0, i)));
              buf = buf.slice(i + 1);
              if (lines.some((l) => l.events?.some((e) => e.key === 'intentions/web/api'))) {
                req.destroy();
                resolve();
              }
            }
          });
        },
      );
      req.on('error', (e) => (lines.length ? undefined : reject(e)));
      req.end();
    });
    // The first heartbeat line tells us the stream is open.
    await new Promise((r) => setTimeout(r, 200));
    await t.admin.putIntention('web', 'api', 'allow');
    await got;
    expect(lines[0]).toHaveProperty('heartbeat');
    const ev = lines.find((l) => l.events)!;
    expect(ev.events![0]).toMatchObject({ type: 'put', key: 'intentions/web/api' });
  });

  it('refuses a node watching tokens', async () => {
    const { client } = await t.joinNode('host-w');
    await expect(client.http.get('/v1/watch', { query: { prefix: 'tokens/' } })).rejects.toMatchObject({
      code: 'MESH_ERR_FORBIDDEN',
    });
  });
});
