/**
 * The agent's data-plane side (agent/proxies/manager.ts) with real sidecar processes (the built
 * CLI's `proxy run`) against a real registry: a sidecar per local service that wants one, with
 * a leaf, a snapshot on disk and the registry's view pushed to it; none pushed for a view that
 * did not change; stopped on deregistration; left running across an agent restart and adopted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceRegistrationSchema } from '../../../src/api/schemas.js';
import type { RegistryClient } from '../../../src/api/registry-client.js';
import { agentPaths } from '../../../src/agent/paths.js';
import { ProxyManager } from '../../../src/agent/proxies/manager.js';
import { PROXY_NODE_FLAGS } from '../../../src/proxy/process-flags.js';
import { RegistryLink } from '../../../src/agent/registry-link.js';
import type { LocalService } from '../../../src/agent/state.js';
import { silentLogger } from '../../../src/util/log.js';
import { CLI } from '../../helpers/cli.js';
import { HOSTS } from '../../helpers/hosts.js';
import { killProxies } from '../../helpers/mesh.js';
import { eventually, startTestRegistry, type TestRegistry } from '../../helpers/registry.js';
import { alive } from '../../helpers/proc.js';

const [HOST] = HOSTS.proxyManager;
const NODE = 'mgr-node';
const WEB_MESH_PORT = 24620;
const API_MESH_PORT = 24621;
const UPSTREAM_PORT = 24622;

let dir: string;
let reg: TestRegistry;
let node: RegistryClient;
let link: RegistryLink;
const managers: ProxyManager[] = [];

const web: LocalService = {
  id: 'web',
  registration: serviceRegistrationSchema.parse({
    name: 'web',
    port: 9100,
    address: HOST,
    meshPort: WEB_MESH_PORT,
    upstreams: [{ service: 'api', localPort: UPSTREAM_PORT }],
  }),
  source: { kind: 'cli' },
};

function manager(): ProxyManager {
  const m = new ProxyManager({
    link,
    log: silentLogger(),
    trustDomain: reg.init.trustDomain,
    advertise: HOST,
    dataDir: dir,
    cliEntry: CLI,
    drainSeconds: 0,
  });
  managers.push(m);
  return m;
}

interface SnapshotFile {
  version: number;
  service: { id: string };
  upstreams: Array<{ service: string; endpoints: Array<{ address: string; port: number }> }>;
}
const snapshotOnDisk = async (id: string) =>
  JSON.parse(await readFile(join(dir, 'snapshots', `${id}.json`), 'utf8')) as SnapshotFile;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshctl-manager-'));
  reg = await startTestRegistry({ defaultIntention: 'allow' });
  const joined = await reg.joinNode(NODE, HOST);
  node = joined.client;
  await node.updateNode(NODE, HOST);
  await node.heartbeat(NODE, 600);
  const paths = agentPaths(dir);
  await mkdir(dirname(paths.nodeCert), { recursive: true });
  await writeFile(paths.nodeCert, joined.certPem);
  await writeFile(paths.nodeKey, joined.keyPem);
  await writeFile(paths.roots, reg.caPem);
  link = new RegistryLink({ registries: [reg.url] }, paths);
  await link.load();
  // What the agent's sync would have told the registry: web here, and an api to call.
  await node.register({ ...web.registration, id: 'web' });
  await node.register({ name: 'api', id: 'api-1', port: 9000, address: HOST, meshPort: API_MESH_PORT });
}, 60_000);

afterAll(async () => {
  for (const m of managers) await m.stop({ shutdownProxies: true }).catch(() => undefined);
  await killProxies(dir);
  link?.close();
  await reg?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ProxyManager (real sidecars, real registry)', () => {
  let first: ProxyManager;
  let pid: number | undefined;

  it('launches a sidecar for a service that wants one, with a leaf and the registry’s view on disk and pushed', async () => {
    first = manager();
    await first.start();
    await first.update([web, { ...web, id: 'plain', registration: { ...web.registration, proxy: false } }]);
    // Only the service with a sidecar gets one.
    expect(first.proxies().map((p) => p.serviceId)).toEqual(['web']);
    const info = await eventually(
      () => {
        const i = first.proxies()[0];
        return i?.state === 'running' && i.snapshotVersion !== null ? i : undefined;
      },
      { what: 'the sidecar serving a snapshot', timeoutMs: 30_000 },
    );
    pid = info.pid;
    expect(alive(pid)).toBe(true);
    // Launched with the proxy's node flags (its young generation's size, src/proxy/process-flags.ts).
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const f of PROXY_NODE_FLAGS) expect(argv).toContain(f);
    expect(existsSync(join(dir, 'services', 'web', 'leaf.pem'))).toBe(true);
    const snap = await snapshotOnDisk('web');
    expect(snap.version).toBe(info.snapshotVersion);
    expect(snap.upstreams).toMatchObject([{ service: 'api', endpoints: [{ address: HOST, port: API_MESH_PORT }] }]);
    const [stats] = await first.stats();
    expect(stats!.stats).not.toHaveProperty('error');
  });

  it('a new instance of an upstream reaches the sidecar; an update that changes nothing pushes nothing', async () => {
    await node.register({ name: 'api', id: 'api-2', port: 9001, address: HOST, meshPort: API_MESH_PORT + 5 });
    const snap = await eventually(
      async () => {
        const s = await snapshotOnDisk('web');
        return s.upstreams[0]!.endpoints.length === 2 ? s : undefined;
      },
      { what: 'api-2 in the snapshot' },
    );
    await eventually(() => first.proxies()[0]!.snapshotVersion === snap.version, { what: 'the new one pushed' });

    await first.update([web]);
    expect(first.proxies()[0]!.snapshotVersion).toBe(snap.version);
    expect((await snapshotOnDisk('web')).version).toBe(snap.version);
  });

  it('an agent restart leaves the sidecar running, and the next manager adopts it', async () => {
    await first.stop();
    expect(alive(pid)).toBe(true);
    const next = manager();
    await next.start();
    await next.update([web]);
    expect(next.proxies()[0]).toMatchObject({ serviceId: 'web', adopted: true, pid });
    first = next;
  });

  it('a deregistered service’s sidecar is stopped and its leaf removed', async () => {
    await first.update([]);
    expect(first.proxies()).toEqual([]);
    await eventually(() => !alive(pid), { what: 'the sidecar gone' });
    expect(existsSync(join(dir, 'services', 'web'))).toBe(false);
  });
});
