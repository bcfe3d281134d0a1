import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { MeshError } from '../../src/errors/index.js';
import { silentLogger } from '../../src/util/log.js';
import { buildAdminServer } from '../../src/agent/admin-server.js';
import type { AgentAdminApi } from '../../src/agent/admin-api.js';

/** An admin API that records what the routes asked of it; `fail` makes a call throw. */
function recordingApi(fail: Partial<Record<keyof AgentAdminApi, MeshError>> = {}) {
  const calls: string[] = [];
  const call = <T>(name: keyof AgentAdminApi, arg: unknown, value: T): T => {
    calls.push(arg === undefined ? name : `${name} ${JSON.stringify(arg)}`);
    const err = fail[name];
    if (err) throw err;
    return value;
  };
  const api: AgentAdminApi = {
    self: () => call('self', undefined, { node: 'host-a' }),
    nodeCertificateExpiry: async () => call('nodeCertificateExpiry', undefined, '2030-01-01T00:00:00.000Z'),
    services: () => call('services', undefined, []),
    definitionProblems: () => call('definitionProblems', undefined, [{ file: '/d/x.yaml', message: 'broken' }]),
    register: async (input) => call('register', input, { id: 'api', synced: true }),
    deregister: async (id) => call('deregister', id, { id, synced: false }),
    ttlUpdate: (checkId, status, note) =>
      call('ttlUpdate', [checkId, status, note], {
        checkId,
        name: checkId,
        kind: 'ttl',
        status,
        output: note,
      } as unknown as ReturnType<AgentAdminApi['ttlUpdate']>),
    registryGet: async (path, query) =>
      call('registryGet', [path, query], { body: { services: [] }, headers: { 'x-mesh-index': '42' } }),
    proxyStats: async () => call('proxyStats', undefined, []),
    sidecarDraining: async (serviceId, pid) => call('sidecarDraining', [serviceId, pid], { withdrawn: true as const }),
    leave: async () => call('leave', undefined, undefined),
    requestStop: () => call('requestStop', undefined, undefined),
    reload: async () => call('reload', undefined, undefined),
  };
  return { api, calls };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function build(fail?: Parameters<typeof recordingApi>[0]) {
  const r = recordingApi(fail);
  app = buildAdminServer(r.api, silentLogger());
  return { app, calls: r.calls };
}

describe('agent admin server routes (injected, not listening)', () => {
  it('GET /v1/agent/self adds the node certificate expiry to what the agent says of itself', async () => {
    const { app } = build();
    const res = await app.inject({ method: 'GET', url: '/v1/agent/self' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ node: 'host-a', nodeCertNotAfter: '2030-01-01T00:00:00.000Z' });
  });

  it('GET /v1/agent/services answers services and definition problems together', async () => {
    const { app } = build();
    const res = await app.inject({ method: 'GET', url: '/v1/agent/services' });
    expect(res.json()).toEqual({ services: [], definitionProblems: [{ file: '/d/x.yaml', message: 'broken' }] });
  });

  it('PUT /v1/agent/services hands the body to register', async () => {
    const { app, calls } = build();
    const ok = await app.inject({ method: 'PUT', url: '/v1/agent/services', payload: { name: 'api', port: 9000 } });
    expect(ok.json()).toEqual({ id: 'api', synced: true });
    expect(calls).toEqual(['register {"name":"api","port":9000}']);
  });

  it("the agent's MeshError becomes the mesh error shape with its status", async () => {
    const { app } = build({ register: new MeshError('MESH_ERR_CONFLICT', "service 'api' is defined in /d/a.yaml") });
    const bad = await app.inject({ method: 'PUT', url: '/v1/agent/services', payload: { name: 'api', port: 9000 } });
    expect(bad.statusCode).toBe(409);
    expect(bad.json()).toMatchObject({ code: 'MESH_ERR_CONFLICT', message: "service 'api' is defined in /d/a.yaml" });
  });

  it('DELETE /v1/agent/services/:id refuses an invalid id without calling the agent', async () => {
    const { app, calls } = build();
    const bad = await app.inject({ method: 'DELETE', url: '/v1/agent/services/Not%20A%20Name' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'MESH_ERR_BAD_REQUEST', message: "invalid service id 'Not A Name'" });
    expect(calls).toEqual([]);
    const ok = await app.inject({ method: 'DELETE', url: '/v1/agent/services/api-1' });
    expect(ok.json()).toEqual({ id: 'api-1', synced: false });
    expect(calls).toEqual(['deregister "api-1"']);
  });

  it('PUT /v1/agent/checks/:id validates the status and defaults the note', async () => {
    const { app, calls } = build();
    const bad = await app.inject({ method: 'PUT', url: '/v1/agent/checks/c1', payload: { status: 'fine' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'MESH_ERR_BAD_REQUEST' });
    const extra = await app.inject({
      method: 'PUT',
      url: '/v1/agent/checks/c1',
      payload: { status: 'passing', colour: 'red' },
    });
    expect(extra.statusCode).toBe(400);
    expect(calls).toEqual([]);
    const ok = await app.inject({ method: 'PUT', url: '/v1/agent/checks/c1', payload: { status: 'warning' } });
    expect(ok.statusCode).toBe(200);
    expect(calls).toEqual(['ttlUpdate ["c1","warning",""]']);
  });

  it('passes through only read-only registry endpoints, with their index header', async () => {
    const { app, calls } = build();
    const ok = await app.inject({ method: 'GET', url: '/v1/agent/registry/catalog/services?wait=5s' });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['x-mesh-index']).toBe('42');
    expect(calls).toEqual(['registryGet ["/v1/catalog/services",{"wait":"5s"}]']);
    for (const path of ['tokens', 'catalog/../tokens', 'admin/nodes', 'catalog/Services']) {
      const res = await app.inject({ method: 'GET', url: `/v1/agent/registry/${path}` });
      expect(res.statusCode, path).toBe(403);
      expect(res.json()).toMatchObject({ code: 'MESH_ERR_FORBIDDEN' });
    }
    expect(calls).toHaveLength(1);
  });

  it('POST /v1/agent/leave answers first and only then asks for the stop; it kills nothing itself', async () => {
    const { app, calls } = build();
    const res = await app.inject({ method: 'POST', url: '/v1/agent/leave', payload: {} });
    expect(res.json()).toEqual({ left: true });
    expect(calls).toEqual(['leave', 'requestStop']);
  });

  it('a failed leave does not ask for the stop', async () => {
    const { app, calls } = build({ leave: new MeshError('MESH_ERR_UNAVAILABLE', 'registry unreachable') });
    const res = await app.inject({ method: 'POST', url: '/v1/agent/leave', payload: {} });
    expect(res.statusCode).toBe(503);
    expect(calls).toEqual(['leave']);
  });

  it('POST /v1/agent/reload reloads; an unknown route gets the mesh 404 shape', async () => {
    const { app, calls } = build();
    expect((await app.inject({ method: 'POST', url: '/v1/agent/reload', payload: {} })).json()).toEqual({
      reloaded: true,
    });
    expect(calls).toEqual(['reload']);
    const nf = await app.inject({ method: 'GET', url: '/v1/agent/nope' });
    expect(nf.statusCode).toBe(404);
    expect(nf.json()).toMatchObject({ code: 'MESH_ERR_NOT_FOUND' });
  });

  it('POST /v1/agent/proxies/:id/draining hands the sidecar and its pid to the agent; a bad notice changes nothing', async () => {
    const { app, calls } = build();
    const ok = await app.inject({ method: 'POST', url: '/v1/agent/proxies/api-1/draining', payload: { pid: 4242 } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ withdrawn: true });
    for (const payload of [{}, { pid: 'x' }, { pid: 1, extra: true }]) {
      const bad = await app.inject({ method: 'POST', url: '/v1/agent/proxies/api-1/draining', payload });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: 'MESH_ERR_BAD_REQUEST' });
    }
    const badId = await app.inject({ method: 'POST', url: '/v1/agent/proxies/Bad_Id!/draining', payload: { pid: 1 } });
    expect(badId.statusCode).toBe(400);
    expect(calls).toEqual(['sidecarDraining ["api-1",4242]']);
  });
});
