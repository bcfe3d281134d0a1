import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { rawRequest } from '../helpers/https.js';
import type { RegistryClient } from '../../src/api/registry-client.js';

const api = (extra: Record<string, unknown> = {}) => ({ name: 'api', port: 9000, protocol: 'http', ...extra });

describe('registry catalog', () => {
  let t: TestRegistry;
  let nodeA: RegistryClient;
  let nodeB: RegistryClient;
  beforeAll(async () => {
    t = await startTestRegistry();
    nodeA = (await t.joinNode('host-a', '127.0.0.2')).client;
    nodeB = (await t.joinNode('host-b', '127.0.0.3')).client;
    await nodeA.heartbeat('host-a', 30);
    await nodeB.heartbeat('host-b', 30);
  });
  afterAll(async () => {
    await t.close();
  });

  it('registers the same service on two nodes and lists both as healthy', async () => {
    await nodeA.register(api());
    await nodeB.register(api());
    const res = await t.admin.instances('api', { healthyOnly: true });
    expect(res.instances.map((i) => `${i.node}@${i.address}`).sort()).toEqual(['host-a@127.0.0.2', 'host-b@127.0.0.3']);
    const services = await t.admin.services();
    expect(services.services).toEqual([{ name: 'api', instances: 2, healthy: 2, tags: [], protocols: ['http'] }]);
  });

  it('does not bump the revision when the same registration is sent again', async () => {
    const first = await nodeA.register(api());
    const again = await nodeA.register(api());
    expect(again.revision).toBe(first.revision);
  });

  it('keeps an instance out of discovery until its check passes, and after it fails', async () => {
    await nodeA.register({ name: 'db', port: 5432, checks: [{ id: 'db-tcp', kind: 'tcp', target: '127.0.0.1:5432' }] });
    expect((await t.admin.instances('db', { healthyOnly: true })).instances).toHaveLength(0);
    await nodeA.updateCheck('host-a', 'db', 'db-tcp', 'passing', 'connected');
    expect((await t.admin.instances('db', { healthyOnly: true })).instances).toHaveLength(1);
    await nodeA.updateCheck('host-a', 'db', 'db-tcp', 'critical', 'connection refused');
    const all = await t.admin.instances('db');
    expect(all.instances[0]).toMatchObject({
      status: 'critical',
      checkStates: { 'db-tcp': { status: 'critical', output: 'connection refused' } },
    });
    expect((await t.admin.instances('db', { healthyOnly: true })).instances).toHaveLength(0);
  });

  it('takes an instance out of discovery while its sidecar drains, through re-registration, and back after', async () => {
    await nodeA.register({ name: 'drainer', port: 7100 });
    expect((await t.admin.instances('drainer', { healthyOnly: true })).instances).toHaveLength(1);
    const marked = await nodeA.setDraining('host-a', 'drainer', true);
    expect(marked.changed).toBe(true);
    expect((await nodeA.setDraining('host-a', 'drainer', true)).changed).toBe(false);
    const [inst] = (await t.admin.instances('drainer')).instances;
    expect(inst).toMatchObject({ status: 'critical', drainingSince: expect.any(String) });
    expect((await t.admin.instances('drainer', { healthyOnly: true })).instances).toHaveLength(0);
    expect((await t.admin.services()).services.find((x) => x.name === 'drainer')).toMatchObject({ healthy: 0 });
    // An agent re-registering (another port) does not end the drain: only its draining update does.
    await nodeA.register({ name: 'drainer', port: 7101 });
    expect((await t.admin.instances('drainer')).instances[0]).toMatchObject({ port: 7101, status: 'critical' });
    await nodeA.setDraining('host-a', 'drainer', false);
    const [back] = (await t.admin.instances('drainer')).instances;
    expect(back?.status).toBe('passing');
    expect(back?.drainingSince).toBeUndefined();
    // Only the node itself (or the admin) says so, and only of an instance it has.
    await expect(nodeB.setDraining('host-a', 'drainer', true)).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
    await expect(nodeA.setDraining('host-a', 'nope', true)).rejects.toMatchObject({ code: 'MESH_ERR_NOT_FOUND' });
    const bad = await rawRequest(t.url, {
      method: 'PUT',
      path: '/v1/health/node/host-a/service/drainer/draining',
      ca: t.caPem,
      token: t.init.adminToken,
      body: JSON.stringify({ draining: 'yes' }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('MESH_ERR_BAD_REQUEST');
    expect((await t.admin.instances('drainer')).instances[0]?.status).toBe('passing');
    await nodeA.deregister('host-a', 'drainer');
  });

  it('refuses registering on another node', async () => {
    await expect(nodeA.register(api(), 'host-b')).rejects.toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
  });

  it('deregisters', async () => {
    await nodeB.register({ name: 'tmp', port: 7000 });
    await nodeB.deregister('host-b', 'tmp');
    expect((await t.admin.instances('tmp')).instances).toHaveLength(0);
    await expect(nodeB.deregister('host-b', 'tmp')).rejects.toMatchObject({ code: 'MESH_ERR_NOT_FOUND' });
  });

  describe('bad input is refused with a clear code and changes nothing', () => {
    const cases: Array<[string, string, number, string]> = [
      ['malformed JSON', '{"service": {"name": "api",', 400, 'MESH_ERR_BAD_REQUEST'],
      [
        'an unknown field',
        JSON.stringify({ node: 'host-a', service: { name: 'x1', port: 1, colour: 'red' } }),
        400,
        'MESH_ERR_BAD_REQUEST',
      ],
      [
        'a name with bad characters',
        JSON.stringify({ node: 'host-a', service: { name: 'Bad Name!', port: 1 } }),
        400,
        'MESH_ERR_BAD_REQUEST',
      ],
      [
        'a port out of range',
        JSON.stringify({ node: 'host-a', service: { name: 'x2', port: 70000 } }),
        400,
        'MESH_ERR_BAD_REQUEST',
      ],
      [
        "the registry's own reserved name",
        JSON.stringify({ node: 'host-a', service: { name: 'meshctl-registry', port: 1 } }),
        400,
        'MESH_ERR_BAD_REQUEST',
      ],
      ['a missing field', JSON.stringify({ node: 'host-a', service: { name: 'x3' } }), 400, 'MESH_ERR_BAD_REQUEST'],
      [
        'an oversized body',
        JSON.stringify({ node: 'host-a', service: { name: 'x4', port: 1, meta: { big: 'x'.repeat(200_000) } } }),
        413,
        'MESH_ERR_BODY_TOO_LARGE',
      ],
      ['a body that is not JSON', 'name=api', 415, 'MESH_ERR_UNSUPPORTED_MEDIA_TYPE'],
    ];
    for (const [what, body, status, code] of cases) {
      it(`refuses ${what}`, async () => {
        const before = await t.admin.status();
        const res = await rawRequest(t.url, {
          method: 'PUT',
          path: '/v1/catalog/register',
          ca: t.caPem,
          token: t.init.adminToken,
          body,
          ...(what === 'a body that is not JSON' ? { contentType: 'application/x-www-form-urlencoded' } : {}),
        });
        expect(res.status).toBe(status);
        expect(res.body.code).toBe(code);
        expect(typeof res.body.message).toBe('string');
        expect((await t.admin.status()).revision).toBe(before.revision);
      });
    }

    it('names the field at fault', async () => {
      const res = await rawRequest(t.url, {
        method: 'PUT',
        path: '/v1/catalog/register',
        ca: t.caPem,
        token: t.init.adminToken,
        body: JSON.stringify({ node: 'host-a', service: { name: 'x', port: 'eighty' } }),
      });
      expect(res.body.message).toContain('service.port');
    });

    it('refuses bad characters in path parameters', async () => {
      const res = await rawRequest(t.url, {
        path: '/v1/catalog/service/Not%20Valid',
        ca: t.caPem,
        token: t.init.adminToken,
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('MESH_ERR_BAD_REQUEST');
    });

    it('answers unknown endpoints with a JSON 404', async () => {
      const res = await rawRequest(t.url, { path: '/v1/nope', ca: t.caPem, token: t.init.adminToken });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('MESH_ERR_NOT_FOUND');
    });
  });

  it('answers a blocking query as soon as the watched service changes', async () => {
    const first = await t.admin.instances('web');
    const waiting = t.admin.instances('web', { index: first.revision, wait: '30s' });
    let settled = false;
    void waiting.then(() => (settled = true));
    // A change elsewhere must not wake the watcher of `web`.
    await nodeA.register({ name: 'other', port: 7100 });
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false);
    await nodeA.register({ name: 'web', port: 8080 });
    const res = await waiting;
    expect(res.revision).toBeGreaterThan(first.revision);
    expect(res.instances.map((i) => i.name)).toEqual(['web']);
  });

  it('a woken blocking query answers JSON with its length and the revision it shows in x-mesh-index', async () => {
    const first = await t.admin.instances('cache');
    const waiting = rawRequest(t.url, {
      path: `/v1/catalog/service/cache?index=${first.revision}&wait=30s`,
      ca: t.caPem,
      token: t.init.adminToken,
    });
    await eventually(async () => (await t.admin.status()).blockingQueries > 0);
    await nodeA.register({ name: 'cache', port: 6379 });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(res.body)));
    expect(res.body.revision).toBeGreaterThan(first.revision);
    expect(res.headers['x-mesh-index']).toBe(String(res.body.revision));
    expect((res.body.instances as Array<{ name: string }>).map((i) => i.name)).toEqual(['cache']);
  });

  it('a client that hangs up during a blocking query leaves no waiter behind', async () => {
    const first = await t.admin.instances('queue');
    const ac = new AbortController();
    const waiting = t.admin.instances('queue', { index: first.revision, wait: '5m', signal: ac.signal });
    waiting.catch(() => undefined);
    await eventually(async () => (await t.admin.status()).blockingQueries === 1);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'MESH_ERR_TIMEOUT' });
    await eventually(async () => (await t.admin.status()).blockingQueries === 0, { what: 'the waiter to go' });
    // The registry still answers the next watcher of the same query.
    const next = t.admin.instances('queue', { index: first.revision, wait: '30s' });
    await nodeA.register({ name: 'queue', port: 5672 });
    expect((await next).instances.map((i) => i.name)).toEqual(['queue']);
  });

  it('returns a blocking query at once when the index is already stale', async () => {
    const res = await t.admin.instances('api', { index: 1, wait: '30s' });
    expect(res.instances.length).toBeGreaterThan(0);
  });
});

describe('node leases', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('turns a node and its instances critical when the lease is not kept alive, and back when it is', async () => {
    const { client } = await t.joinNode('host-c');
    await client.heartbeat('host-c', 2);
    await client.register({ name: 'cache', port: 6379 });
    expect((await t.admin.instances('cache', { healthyOnly: true })).instances).toHaveLength(1);
    // No keep-alive: the lease runs out.
    await eventually(async () => (await t.admin.instances('cache', { healthyOnly: true })).instances.length === 0, {
      what: 'lease expiry',
    });
    const all = await t.admin.instances('cache');
    expect(all.instances).toHaveLength(1);
    expect(all.instances[0]).toMatchObject({ nodeAlive: false, status: 'critical' });
    expect((await t.admin.nodes()).nodes.find((n) => n.name === 'host-c')?.alive).toBe(false);
    await client.heartbeat('host-c', 2);
    expect((await t.admin.instances('cache', { healthyOnly: true })).instances).toHaveLength(1);
  });

  it('removes a node and everything on it when it leaves', async () => {
    const { client } = await t.joinNode('host-d');
    await client.heartbeat('host-d', 10);
    await client.register({ name: 'queue', port: 5672 });
    await client.leave('host-d');
    expect((await t.admin.instances('queue')).instances).toHaveLength(0);
    expect((await t.admin.nodes()).nodes.map((n) => n.name)).not.toContain('host-d');
  });
});
