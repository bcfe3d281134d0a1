import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestRegistry, eventually, type TestRegistry } from '../helpers/registry.js';
import { rawRequest } from '../helpers/https.js';
import { RegistryClient } from '../../src/api/registry-client.js';
import { createKeyAndCsr, nodeId, serviceId } from '../../src/ca/index.js';
import { MeshError } from '../../src/errors/index.js';
import { newToken } from '../../src/registry/tokens.js';
import { keys } from '../../src/registry/keys.js';
import { patternMatches } from '../../src/registry/authz.js';

async function leafCsr(service: string): Promise<string> {
  return (await createKeyAndCsr({ spiffeId: serviceId('mesh.local', service) })).csrPem;
}

async function joinWith(t: TestRegistry, token: string, name: string, address = '127.0.0.1') {
  const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId('mesh.local', name) });
  const res = await t.withToken(token).join({ nodeName: name, address, csr: csrPem });
  return {
    res,
    keyPem,
    client: new RegistryClient({ baseUrl: t.url, ca: t.caPem, cert: res.certificate, key: keyPem }),
  };
}

function codeOf(e: unknown): string | undefined {
  return e instanceof MeshError ? e.code : undefined;
}

describe('service authorization per node', () => {
  let t: TestRegistry;
  let node: RegistryClient;
  beforeAll(async () => {
    t = await startTestRegistry();
    node = (await t.joinNode('api-host', '127.0.0.2', { services: ['api', 'batch-*'] })).client;
  });
  afterAll(async () => {
    await t.close();
  });

  it('lets a node authorized for api register api and get its leaf', async () => {
    await node.register({ name: 'api', port: 9000 });
    await expect(node.sign('api', await leafCsr('api'))).resolves.toHaveProperty('certificate');
  });

  it('refuses a registration of web by that node, through the API, with a clear code', async () => {
    const err = await node.register({ name: 'web', port: 8080 }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe('MESH_ERR_SERVICE_NOT_AUTHORIZED');
    expect((err as Error).message).toMatch(/node 'api-host' may not register service 'web'/);
    const all = await t.admin.allInstances();
    expect(all.instances.map((i) => i.name)).not.toContain('web');
  });

  it('refuses a CSR for svc/web by that node, even with web registered on it by the admin', async () => {
    await expect(t.admin.register({ name: 'web', port: 8080 }, 'api-host')).rejects.toMatchObject({
      code: 'MESH_ERR_SERVICE_NOT_AUTHORIZED',
    });
    await expect(node.sign('web', await leafCsr('web'))).rejects.toMatchObject({
      code: 'MESH_ERR_SERVICE_NOT_AUTHORIZED',
    });
  });

  it('matches patterns on name characters only', async () => {
    await node.register({ name: 'batch-nightly', port: 9100 });
    await expect(node.register({ name: 'batchy', port: 9101 })).rejects.toMatchObject({
      code: 'MESH_ERR_SERVICE_NOT_AUTHORIZED',
    });
    expect(patternMatches('batch-*', 'batch-a.b')).toBe(true);
    expect(patternMatches('batch-*', 'batch')).toBe(false);
    expect(patternMatches('a.b', 'aXb')).toBe(false);
  });

  it('never authorizes the registry identity, not even for an any-service node', async () => {
    const any = (await t.joinNode('any-host', '127.0.0.4')).client;
    const err = await any.sign('meshctl-registry', await leafCsr('meshctl-registry')).catch((e: unknown) => e);
    expect(codeOf(err)).toBe('MESH_ERR_BAD_REQUEST');
    expect((err as Error).message).toMatch(/reserved for the registry itself/);
  });

  it('shows and changes the authorization per node: allow, then deny deregisters and revokes', async () => {
    expect((await t.admin.node('api-host')).authorization).toEqual({ services: ['api', 'batch-*'], anyService: false });
    await t.admin.authorizeNode('api-host', { action: 'allow', services: ['web'] });
    await node.register({ name: 'web', port: 8080 });
    const leaf = await node.sign('web', await leafCsr('web'));

    // 'batch-nightly' cannot be denied alone while the pattern allows it.
    await expect(
      t.admin.authorizeNode('api-host', { action: 'deny', services: ['batch-nightly'] }),
    ).rejects.toMatchObject({ code: 'MESH_ERR_CONFLICT' });

    const res = await t.admin.authorizeNode('api-host', { action: 'deny', services: ['web'] });
    expect(res.deregistered).toEqual(['web']);
    expect(res.revoked).toBe(1);
    expect((await t.admin.revoked()).revoked.map((r) => r.serial)).toContain(leaf.serial);
    await expect(node.register({ name: 'web', port: 8080 })).rejects.toMatchObject({
      code: 'MESH_ERR_SERVICE_NOT_AUTHORIZED',
    });
    // A node reads its own record, never another's, and cannot change its authorization.
    await expect(node.node('api-host')).resolves.toMatchObject({ name: 'api-host' });
    await expect(node.node('any-host')).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
    await expect(node.authorizeNode('api-host', { action: 'allow', anyService: true })).rejects.toMatchObject({
      code: 'MESH_ERR_FORBIDDEN',
    });
  });

  it('keeps the authorization when the node rewrites its own record', async () => {
    await node.updateNode('api-host', '127.0.0.2');
    await node.http.put('/v1/nodes/api-host', { address: '127.0.0.2', meta: { x: 'y' } });
    expect((await t.admin.node('api-host')).authorization.services).toEqual(['api', 'batch-*']);
    const bad = await node.http
      .put('/v1/nodes/api-host', { address: '127.0.0.2', authorization: { services: [], anyService: true } })
      .catch((e: unknown) => e);
    expect(codeOf(bad)).toBe('MESH_ERR_BAD_REQUEST');
  });
});

describe('join tokens and node names', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it("makes init's first join token single-use, for a day, authorizing no services", async () => {
    const first = (await t.admin.tokens()).find((x) => x.kind === 'join')!;
    expect(first).toMatchObject({ maxUses: 1, uses: 0, services: [] });
    expect(Date.parse(first.expiresAt!) - Date.parse(first.createdAt)).toBe(86_400_000);
    const { client } = await joinWith(t, t.init.joinToken, 'first');
    await client.heartbeat('first', 30);
    await expect(client.register({ name: 'api', port: 9000 })).rejects.toMatchObject({
      code: 'MESH_ERR_SERVICE_NOT_AUTHORIZED',
    });
    const again = await joinWith(t, t.init.joinToken, 'second').catch((e: unknown) => e);
    expect(codeOf(again)).toBe('MESH_ERR_TOKEN_USED_UP');
    expect((again as Error).message).toMatch(/used up \(1 of 1 joins\)/);
  });

  it('gives join tokens a default lifetime of 24 h and refuses an expired one with its reason', async () => {
    const made = await t.admin.createToken('default lifetime', undefined, { services: ['api'] });
    expect(Date.parse(made.info.expiresAt!) - Date.parse(made.info.createdAt)).toBe(86_400_000);
    const old = newToken('join', 'expired', 60, new Date(Date.now() - 120_000), { services: ['api'] });
    await t.registry.store.put(keys.token(old.record.id), JSON.stringify(old.record));
    const err = await joinWith(t, old.token, 'late').catch((e: unknown) => e);
    expect(codeOf(err)).toBe('MESH_ERR_TOKEN_EXPIRED');
    expect((err as Error).message).toMatch(/expired at/);
  });

  it("refuses a live node's name, and a dead node's name without the admin's approval", async () => {
    const made = await t.admin.createToken('', undefined, { services: ['api'], uses: 5 });
    const { client: n2 } = await joinWith(t, made.token, 'node2', '127.0.0.2');
    await n2.heartbeat('node2', 30);
    await n2.register({ name: 'api', port: 9000 });
    const leaf = await n2.sign('api', await leafCsr('api'));

    const err = await joinWith(t, made.token, 'node2', '127.0.0.9').catch((e: unknown) => e);
    expect(codeOf(err)).toBe('MESH_ERR_NODE_NAME_TAKEN');
    expect((err as Error).message).toBe("node 'node2' is alive at 127.0.0.2; remove it first with meshctl node remove");
    const rec = await t.admin.node('node2');
    expect(rec.address).toBe('127.0.0.2');

    // node2 goes silent: its lease expires, its record stays.
    const lease = JSON.parse((await t.registry.store.get(keys.alive('node2')))!.value) as { leaseId: number };
    await t.registry.store.revokeLease(lease.leaseId);
    const dead = await joinWith(t, made.token, 'node2', '127.0.0.9').catch((e: unknown) => e);
    expect(codeOf(dead)).toBe('MESH_ERR_NODE_NAME_TAKEN');
    expect((dead as Error).message).toMatch(/needs the admin's approval/);

    const approved = await t.admin.createToken('', undefined, { services: ['api'], replaceNode: 'node2', uses: 1 });
    const { client: newcomer } = await joinWith(t, approved.token, 'node2', '127.0.0.9');
    expect((await t.admin.node('node2')).address).toBe('127.0.0.9');
    // The old node's certificates went with its name.
    await expect(n2.heartbeat('node2', 30)).rejects.toMatchObject({ code: 'MESH_ERR_UNAUTHENTICATED' });
    expect((await t.admin.revoked()).revoked.map((r) => r.serial)).toContain(leaf.serial);
    await expect(newcomer.heartbeat('node2', 30)).resolves.toBeDefined();
  });

  it('changes nothing on a join with a bad CSR: no node, no use counted', async () => {
    const made = await t.admin.createToken('', undefined, { services: ['api'], uses: 1 });
    await expect(
      t.withToken(made.token).join({ nodeName: 'badcsr', address: '127.0.0.1', csr: 'garbage' }),
    ).rejects.toMatchObject({ code: 'MESH_ERR_CSR_INVALID' });
    expect((await t.admin.nodes()).nodes.map((n) => n.name)).not.toContain('badcsr');
    await expect(joinWith(t, made.token, 'badcsr')).resolves.toBeDefined();
  });

  it('refuses token bodies that mix scopes', async () => {
    for (const body of [
      { kind: 'join', services: ['api'], anyService: true },
      { kind: 'admin', services: ['api'] },
      { kind: 'join', services: ['*'] },
      { kind: 'join', uses: 0 },
    ]) {
      await expect(t.admin.http.post('/v1/tokens', body)).rejects.toMatchObject({ code: 'MESH_ERR_BAD_REQUEST' });
    }
  });
});

describe('revocation at the registry', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a removed node on every request, also on a connection opened before', async () => {
    const { client, certPem, keyPem } = await t.joinNode('nodex', '127.0.0.3', { services: ['api'] });
    await client.heartbeat('nodex', 30);
    await client.register({ name: 'api', port: 9000 });
    const leaf = await client.sign('api', await leafCsr('api'));
    // The client's keep-alive connection is open now.
    await expect(client.status()).resolves.toBeDefined();

    const removed = await t.admin.removeNode('nodex');
    expect(removed.revoked).toBe(2);
    for (const call of [
      () => client.status(),
      () => client.heartbeat('nodex', 30),
      () => client.updateNode('nodex', '127.0.0.3'),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(codeOf(err)).toBe('MESH_ERR_UNAUTHENTICATED');
      expect((err as Error).message).toMatch(/certificate of node 'nodex' .* has been revoked/);
    }
    // A fresh connection with the same certificate fares no better.
    const res = await rawRequest(t.url, { path: '/v1/status', ca: t.caPem, cert: certPem, key: keyPem });
    expect(res.status).toBe(401);
    expect((await t.admin.nodes()).nodes.map((n) => n.name)).not.toContain('nodex');

    const list = await t.admin.revoked();
    expect(list.revoked.map((r) => r.serial)).toContain(leaf.serial);
    expect(list.revoked.find((r) => r.serial === leaf.serial)).toMatchObject({ node: 'nodex', kind: 'leaf' });
  });

  it('keeps the revocation list across a restart (sqlite) and serves it to nodes as a blocking query', async () => {
    const s = await startTestRegistry({ store: 'sqlite' });
    try {
      const gone = await s.joinNode('gone', '127.0.0.5', { services: ['api'] });
      const watcher = (await s.joinNode('watcher', '127.0.0.6', { services: ['web'] })).client;
      const before = await watcher.revoked();
      const waiting = watcher.revoked({ index: before.revision, wait: '30s' });
      await s.admin.removeNode('gone');
      const after = await waiting;
      expect(after.revoked.length).toBe(1);
      await s.restart();
      await expect(gone.client.status()).rejects.toMatchObject({ code: 'MESH_ERR_UNAUTHENTICATED' });
      expect((await watcher.revoked()).revoked.length).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('lets a node leave on its own, which revokes its certificates too', async () => {
    const { client } = await t.joinNode('leaver', '127.0.0.7');
    await client.leave('leaver');
    await expect(client.status()).rejects.toMatchObject({ code: 'MESH_ERR_UNAUTHENTICATED' });
  });
});

describe('admin tokens', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses to revoke the last admin token, and revokes it once another exists', async () => {
    const first = (await t.admin.tokens()).find((x) => x.kind === 'admin')!;
    const err = await t.admin.revokeToken(first.id).catch((e: unknown) => e);
    expect(codeOf(err)).toBe('MESH_ERR_LAST_ADMIN_TOKEN');
    await expect(t.admin.services()).resolves.toBeDefined();

    const second = await t.admin.createToken('second admin', undefined, { kind: 'admin' });
    expect(second.info).toMatchObject({ kind: 'admin' });
    expect(second.info.expiresAt).toBeUndefined();
    const admin2 = t.withToken(second.token);
    await admin2.revokeToken(first.id);
    await expect(t.admin.services()).rejects.toMatchObject({ code: 'MESH_ERR_UNAUTHENTICATED' });
    await expect(admin2.revokeToken(second.info.id)).rejects.toMatchObject({ code: 'MESH_ERR_LAST_ADMIN_TOKEN' });
  });
});

describe('the audit log', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('has every write made with a token, with the token id that made it; reads are not in it', async () => {
    const adminId = (await t.admin.tokens()).find((x) => x.kind === 'admin')!.id;
    const made = await t.admin.createToken('for the log', undefined, { services: ['api'] });
    await t.admin.putIntention('web', 'api', 'allow');
    await t.admin.revokeToken(made.info.id);
    await t.joinNode('logged', '127.0.0.8');
    const path = join(t.dataDir, 'audit.log');
    const lines = await eventually(async () => {
      const l = (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((x) => JSON.parse(x) as Record<string, unknown>);
      return l.some((x) => x.action === 'POST /v1/join') && l;
    });
    expect(lines).toContainEqual(
      expect.objectContaining({ tokenId: adminId, kind: 'admin', action: 'POST /v1/tokens', status: 200 }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ tokenId: adminId, action: 'PUT /v1/intentions' }));
    expect(lines).toContainEqual(
      expect.objectContaining({ tokenId: adminId, action: `DELETE /v1/tokens/${made.info.id}` }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ kind: 'join', action: 'POST /v1/join', status: 200 }));
    expect(lines.some((x) => String(x.action).startsWith('GET '))).toBe(false);
  });
});

describe('serials', () => {
  it('compare as Node prints them: uppercase whole bytes, a leading 0x0D byte kept, pad bytes dropped', async () => {
    const { normalizeSerial } = await import('../../src/ca/index.js');
    expect(normalizeSerial('0d72bc')).toBe('0D72BC');
    expect(normalizeSerial('0081ff')).toBe('81FF');
    expect(normalizeSerial('00')).toBe('00');
  });
});
