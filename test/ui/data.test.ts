import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { gatherMesh, type MeshDataSource } from '../../src/ui/data/source.js';
import { openMeshSource } from '../../src/ui/data/open-source.js';
import { AgentSource, RegistrySource } from '../../src/ui/data/http-sources.js';
import { renderFrame } from '../../src/ui/run-dashboard.js';

describe('reading the mesh from a real registry', () => {
  let t: TestRegistry;
  let dir: string;
  const sources: MeshDataSource[] = [];
  const open = async (flags: Parameters<typeof openMeshSource>[0]) => {
    const s = await openMeshSource(flags, { timeoutMs: 2_000 });
    sources.push(s);
    return s;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshctl-ui-'));
    // No saved settings, env or default agent socket may leak in from the machine.
    process.env.MESHCTL_CONFIG_DIR = join(dir, 'config');
    process.env.MESHCTL_DATA_DIR = join(dir, 'data');
    for (const k of ['MESHCTL_REGISTRY', 'MESHCTL_TOKEN', 'MESHCTL_CA_FILE', 'MESHCTL_AGENT_SOCKET'])
      delete process.env[k];
    t = await startTestRegistry();
    const a = (await t.joinNode('host-a', '127.0.0.2')).client;
    await a.heartbeat('host-a', 30);
    await a.register({
      name: 'api',
      port: 9000,
      protocol: 'http',
      checks: [{ id: 'api-ttl', kind: 'ttl', ttlMs: 60_000 }],
    });
    await a.updateCheck('host-a', 'api', 'api-ttl', 'critical', 'app stopped\nat 12:00');
    await a.register({ name: 'web', port: 8080, protocol: 'http', upstreams: [{ service: 'api', localPort: 18000 }] });
    await t.admin.putIntention('web', 'api', 'allow');
  });
  afterAll(async () => {
    for (const s of sources) s.close();
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gathers status, catalog, nodes and intentions through the registry source', async () => {
    const src = await open({ registry: t.url, token: t.init.adminToken, caFile: t.init.caCertPath });
    expect(src).toBeInstanceOf(RegistrySource);
    const snap = await gatherMesh(src);
    expect(snap.source).toBe(`registry ${t.url}`);
    expect(snap.registry).toMatchObject({ trustDomain: t.init.trustDomain, store: 'memory' });
    expect(snap.services.map((s) => [s.name, s.healthy, s.instances])).toEqual([
      ['api', 0, 1],
      ['web', 1, 1],
    ]);
    expect(snap.instances.find((i) => i.name === 'api')).toMatchObject({
      status: 'critical',
      checkStates: { 'api-ttl': { output: 'app stopped\nat 12:00' } },
    });
    expect(snap.nodes).toMatchObject([{ name: 'host-a', alive: true }]);
    expect(snap.intentions).toMatchObject([{ source: 'web', destination: 'api', action: 'allow' }]);
    expect(snap.defaultAction).toBe('deny');
    expect(snap.agent).toBeNull();
    // Whether or not this registry serves metrics yet, the snapshot says which.
    if (snap.metrics === null) expect(snap.metricsProblem).toBe('not available');
    else expect(snap.metricsProblem).toBeNull();

    const frame = stripVTControlCharacters(renderFrame(snap, 80));
    expect(frame).toContain(t.init.trustDomain);
    expect(frame).toMatch(/api\s+0\/1/);
    expect(frame).toMatch(/host-a\s+alive/);
    expect(frame).toMatch(/web → api\s+allow/);
  });

  it('fails the read with a clear code when the token is wrong', async () => {
    const src = await open({ registry: t.url, token: 'msh_wrong_token', caFile: t.init.caCertPath });
    await expect(gatherMesh(src)).rejects.toMatchObject({ code: 'MESH_ERR_UNAUTHENTICATED' });
  });

  it('reports an unreachable registry as MESH_ERR_UNAVAILABLE, and reads again once it is back', async () => {
    const src = await open({ registry: t.url, token: t.init.adminToken, caFile: t.init.caCertPath });
    await t.registry.close();
    await expect(gatherMesh(src)).rejects.toMatchObject({ code: 'MESH_ERR_UNAVAILABLE' });
    await t.restart();
    expect((await gatherMesh(src)).registry.trustDomain).toBe(t.init.trustDomain);
  });

  it('uses an agent socket when one is named, and says so when it is not there', async () => {
    const socket = join(dir, 'no-agent.sock');
    const src = await open({ socket });
    expect(src).toBeInstanceOf(AgentSource);
    expect(src.label).toBe(`agent ${socket}`);
    await expect(gatherMesh(src)).rejects.toMatchObject({ code: 'MESH_ERR_UNAVAILABLE' });
  });

  it('asks for a registry or an agent when neither is configured', async () => {
    await expect(openMeshSource({})).rejects.toMatchObject({
      code: 'MESH_ERR_CONFIG',
      message: expect.stringContaining('no registry configured'),
    });
  });
});
