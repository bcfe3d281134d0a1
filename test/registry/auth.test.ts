import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { rawRequest } from '../helpers/https.js';
import { MeshError } from '../../src/errors/index.js';
import { createRoot, CertificateAuthority, createKeyAndCsr, nodeId } from '../../src/ca/index.js';
import { parseToken } from '../../src/registry/tokens.js';

describe('registry authentication', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers the health endpoint without credentials', async () => {
    await expect(t.anonymous().health()).resolves.toEqual({ status: 'ok' });
  });

  it('refuses every other request without a token with 401', async () => {
    const res = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('MESH_ERR_UNAUTHENTICATED');
  });

  it('refuses a wrong token, a malformed token and a malformed header with 401', async () => {
    const [id] = t.init.adminToken.split('_').slice(1);
    for (const token of [`msh_${id}_${'A'.repeat(43)}`, 'not-a-token', 'msh_0000000000000000_' + 'B'.repeat(43)]) {
      const res = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem, token });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('MESH_ERR_UNAUTHENTICATED');
    }
    const res = await rawRequest(t.url, {
      path: '/v1/catalog/services',
      ca: t.caPem,
      token: undefined,
      body: undefined,
    });
    expect(res.status).toBe(401);
  });

  it('lets the admin token read the catalog', async () => {
    const res = await t.admin.services();
    expect(res.services).toEqual([]);
    expect(res.revision).toBeGreaterThan(0);
  });

  it('lets a join token join but do nothing else', async () => {
    const joiner = t.withToken(t.init.joinToken);
    await expect(joiner.services()).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
  });

  it('speaks TLS 1.3 only', async () => {
    await expect(rawRequest(t.url, { path: '/v1/health', ca: t.caPem, maxVersion: 'TLSv1.2' })).rejects.toThrow();
  });

  it('authenticates a joined node by its certificate, and only as itself', async () => {
    const { client } = await t.joinNode('host-a');
    await expect(client.heartbeat('host-a', 10)).resolves.toMatchObject({ ttlSeconds: 10 });
    await expect(client.heartbeat('host-b', 10)).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
    await expect(client.putIntention('a', 'b', 'allow')).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
    await expect(client.tokens()).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
  });

  it('refuses a client certificate from a foreign CA', async () => {
    const root = await createRoot({ trustDomain: 'mesh.local' });
    const foreign = await CertificateAuthority.load({
      certPem: root.certPem,
      keyPem: root.keyPem,
      trustDomain: 'mesh.local',
    });
    const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId('mesh.local', 'host-a') });
    const forged = await foreign.signCsr(csrPem, { expectedId: nodeId('mesh.local', 'host-a') });
    const res = await rawRequest(t.url, {
      path: '/v1/catalog/services',
      ca: t.caPem,
      cert: forged.certPem,
      key: keyPem,
    });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('MESH_ERR_UNAUTHENTICATED');
  });

  it('stops accepting a revoked join token', async () => {
    const made = await t.admin.createToken('for one host');
    const list = await t.admin.tokens();
    expect(list.map((x) => x.id)).toContain(made.info.id);
    expect(JSON.stringify(list)).not.toContain(parseToken(made.token)!.secret);
    await t.admin.revokeToken(made.info.id);
    const { csrPem } = await createKeyAndCsr({ spiffeId: nodeId('mesh.local', 'host-z') });
    const err = await t
      .withToken(made.token)
      .join({ nodeName: 'host-z', address: '127.0.0.1', csr: csrPem })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe('MESH_ERR_UNAUTHENTICATED');
    const nodes = await t.admin.nodes();
    expect(nodes.nodes.map((n) => n.name)).not.toContain('host-z');
  });
});
