/**
 * Several registries, one mesh, on a real 3-member etcd: the first host makes the mesh, a
 * second finds it with the mesh key and makes only its own certificate; both serve the same
 * state, list each other as peers, and neither keeps the CA key on disk or in etcd in the clear.
 */
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/api/registry-client.js';
import { createKeyAndCsr, nodeId } from '../../src/ca/index.js';
import { initEtcdServer, type InitEtcdServerResult } from '../../src/registry/bootstrap-etcd.js';
import { startRegistry, type RunningRegistry } from '../../src/registry/main.js';
import { newMeshKey, writeMeshKey } from '../../src/registry/mesh-key.js';
import { openStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { ETCD_PORTS } from '../helpers/hosts.js';
import { eventually } from '../helpers/registry.js';

let dir = '';
let etcd: EtcdCluster;
const running: RunningRegistry[] = [];
const clients: RegistryClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-shared-mesh-'));
  etcd = await startEtcdCluster({ basePort: ETCD_PORTS.sharedMesh, dir: join(dir, 'etcd') });
});
afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of running) await r.close().catch(() => undefined);
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const init = (name: string, extra: { meshKeyFile?: string } = {}): Promise<InitEtcdServerResult> =>
  initEtcdServer({
    dataDir: join(dir, name),
    bind: '127.0.0.1:7443',
    advertise: '127.0.0.1',
    etcd: { endpoints: etcd.endpoints },
    ...extra,
  });

const start = async (name: string): Promise<RunningRegistry> => {
  const r = await startRegistry({ dataDir: join(dir, name), bind: '127.0.0.1:0', log: silentLogger() });
  running.push(r);
  return r;
};

describe('several registries, one mesh on etcd', () => {
  let first: InitEtcdServerResult;
  let second: InitEtcdServerResult;

  it('the first host makes the mesh in etcd and the mesh key; the CA key is on no disk', async () => {
    first = await init('a');
    expect(first.joined).toBe(false);
    expect(first.adminToken).toMatch(/^msh_/);
    expect((await stat(first.meshKeyPath)).mode & 0o777).toBe(0o600);
    expect(existsSync(join(first.dataDir, 'ca/root.key'))).toBe(false);
    expect(first.otherRegistryCommand).toBe(
      `meshctl init --server --store etcd --etcd-endpoints ${etcd.endpoints.join(',')} --mesh-key ${first.meshKeyPath}`,
    );
  });

  it('a second init without the mesh key refuses: no second mesh', async () => {
    await expect(init('x')).rejects.toMatchObject({
      code: 'MESH_ERR_ALREADY_INITIALIZED',
      hint: expect.stringContaining('--mesh-key'),
    });
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it('another host joins with the mesh key: same CA, its own certificate, no new tokens', async () => {
    second = await init('b', { meshKeyFile: first.meshKeyPath });
    expect(second.joined).toBe(true);
    expect(second.caFingerprint).toBe(first.caFingerprint);
    expect(second.adminToken).toBeUndefined();
    expect(await readFile(second.meshKeyPath, 'utf8')).toBe(await readFile(first.meshKeyPath, 'utf8'));
    const wrong = join(dir, 'wrong.key');
    await writeMeshKey(wrong, newMeshKey());
    await expect(init('c', { meshKeyFile: wrong })).rejects.toMatchObject({ code: 'MESH_ERR_CONFIG' });
  });

  it('both registries serve the same mesh and list each other as peers', async () => {
    const a = await start('a');
    const b = await start('b');
    const caPem = await readFile(first.caCertPath, 'utf8');
    const adminA = new RegistryClient({ baseUrl: a.url, ca: caPem, token: first.adminToken! });
    const adminB = new RegistryClient({ baseUrl: b.url, ca: caPem, token: first.adminToken! });
    clients.push(adminA, adminB);
    // A node joins through A with the join token; B knows the node and accepts its certificate.
    const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(first.trustDomain, 'n1') });
    // init's own join token serves no service: make one that may (as `meshctl token create --any-service`).
    const { token } = await adminA.createToken('join n1', undefined, { anyService: true });
    const joiner = new RegistryClient({ baseUrl: a.url, ca: caPem, token });
    clients.push(joiner);
    const joined = await joiner.join({ nodeName: 'n1', address: '127.0.0.1', csr: csrPem });
    const nodeOnB = new RegistryClient({ baseUrl: b.url, ca: caPem, cert: joined.certificate, key: keyPem });
    clients.push(nodeOnB);
    await nodeOnB.register({ name: 'api', port: 9000 }, 'n1');
    expect((await adminA.services()).services.map((s) => s.name)).toContain('api');
    expect((await adminB.nodes()).nodes.map((n) => n.name)).toEqual(['n1']);

    const peersA = await adminA.peers();
    expect(peersA.peers.map((p) => p.url).sort()).toEqual([a.url, b.url].sort());
    expect((await adminB.peers()).self).not.toBe(peersA.self);
    await a.close();
    await eventually(async () => (await adminB.peers()).peers.length === 1, { what: 'A to leave the peer list' });
  });

  it('etcd holds no secret in the clear', async () => {
    const s = await openStore({ kind: 'etcd', endpoints: etcd.endpoints });
    try {
      const { kvs } = await s.range('');
      expect(kvs.length).toBeGreaterThan(0);
      for (const kv of kvs) expect(kv.value).not.toContain('PRIVATE KEY');
    } finally {
      await s.close();
    }
  });

  it('a registry without the mesh key, or with another mesh key, refuses to start and says why', async () => {
    const keyB = join(dir, 'b', 'mesh.key');
    const saved = await readFile(keyB, 'utf8');
    await unlink(keyB);
    await expect(start('b')).rejects.toMatchObject({
      code: 'MESH_ERR_NOT_INITIALIZED',
      message: expect.stringContaining('no mesh key'),
    });
    await writeMeshKey(keyB, newMeshKey());
    await expect(start('b')).rejects.toMatchObject({
      code: 'MESH_ERR_CONFIG',
      message: expect.stringContaining('does not open the CA key'),
    });
    await writeFile(keyB, saved, { mode: 0o600 });
    await start('b');
  });
});
