/**
 * Config entries reach the sidecars, with real agents on loopback: `meshctl apply -f` of a
 * resolver, splitter and router for `api` shows up within seconds in the snapshot of web's
 * sidecar as routes of weighted targets, each subset with only its instances; a change of
 * the split moves the live weights; deleting the entries brings back the snapshot without a
 * policy (today's behaviour). The snapshot is read where the agent writes it for its proxy.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxySnapshot } from '../../src/proxy/snapshot.js';
import { HOSTS } from '../helpers/hosts.js';
import { agentProxies, startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [HOST_WEB, HOST_V1, HOST_V2] = HOSTS.policy;

const POLICY = (v1: number, v2: number) => `kind: service-resolver
name: api
default_subset: v1
subsets:
  v1: { filter: 'Service.Meta.version == v1' }
  v2: { filter: 'Service.Meta.version == v2' }
---
kind: service-splitter
name: api
splits:
  - { weight: ${v1}, service_subset: v1 }
  - { weight: ${v2}, service_subset: v2 }
---
kind: service-router
name: api
routes:
  - match: { http: { header: [{ name: x-canary, exact: "1" }] } }
    destination: { service_subset: v2 }
`;

describe('config entries reach the sidecars through the agents', () => {
  let mesh: TestMesh;
  let web: MeshAgent;
  const apps: TestApp[] = [];
  const UP = 18000 + Math.floor(Math.random() * 1000);

  /** The snapshot version web's sidecar serves (it refuses a snapshot it cannot parse), from the agent. */
  async function servedVersion(): Promise<number | null> {
    return (await agentProxies(web.socket)).find((p) => p.info.serviceId === 'web')?.info.snapshotVersion ?? null;
  }

  /** The snapshot the web agent last wrote for its sidecar. */
  async function webSnapshot(): Promise<ProxySnapshot | undefined> {
    const dir = join(web.dataDir, 'snapshots');
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith('web'));
    if (files.length === 0) return undefined;
    return JSON.parse(await readFile(join(dir, files[0]!), 'utf8')) as ProxySnapshot;
  }

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'allow' });
    web = await mesh.addAgent('web-host', HOST_WEB, { services: ['web'] });
    for (const [name, host, version] of [
      ['api-v1', HOST_V1!, 'v1'],
      ['api-v2', HOST_V2!, 'v2'],
    ] as const) {
      const agent = await mesh.addAgent(name, host, { services: ['api'] });
      const app = await startApp(name, host);
      apps.push(app);
      await agent.register({ name: 'api', port: app.port, protocol: 'http', meta: { version } });
    }
    await web.register({ name: 'web', port: 9300, protocol: 'http', upstreams: [`api:${UP}`] });
    await eventually(async () => (await webSnapshot())?.upstreams[0]?.endpoints.length === 2 || undefined, {
      what: "web's snapshot with both api instances",
      timeoutMs: 60_000,
    });
  }, 120_000);

  afterAll(async () => {
    for (const a of apps) await a.stop();
    await mesh?.close();
  });

  it('has no policy without config entries (today behaviour)', async () => {
    expect((await webSnapshot())!.upstreams[0]!.policy).toBeUndefined();
  });

  it('compiles applied entries into routes and subsets, and follows a change of the split', async () => {
    const file = join(mesh.dir, 'api-policy.yaml');
    await writeFile(file, POLICY(90, 10));
    const r = await mesh.admin(['apply', '-f', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    const policy = await eventually(async () => (await webSnapshot())?.upstreams[0]?.policy, {
      what: "api's policy in web's snapshot",
      timeoutMs: 20_000,
    });
    expect(policy.routes.map((x) => [x.name, x.splits.map((s) => `${s.weight} ${s.target}`).join(', ')])).toEqual([
      ['route 1 of service-router api', '100 api/v2'],
      ['service-splitter api', '90 api/v1, 10 api/v2'],
    ]);
    expect(policy.routes[0]!.match).toEqual({ headers: [{ name: 'x-canary', exact: '1' }] });
    const nodes = Object.fromEntries(policy.targets.map((t) => [t.name, t.endpoints.map((e) => e.node)]));
    expect(nodes).toEqual({ 'api/v2': ['api-v2'], 'api/v1': ['api-v1'] });
    // The sidecar took it: it serves the version the agent wrote.
    const written = (await webSnapshot())!.version;
    await eventually(async () => (await servedVersion()) === written || undefined, {
      what: 'the sidecar serving the snapshot with the policy',
      timeoutMs: 20_000,
    });

    await writeFile(file, POLICY(70, 30));
    expect((await mesh.admin(['apply', '-f', file])).exitCode).toBe(0);
    await eventually(
      async () =>
        (await webSnapshot())?.upstreams[0]?.policy?.routes[1]?.splits.map((s) => s.weight).join('/') === '70/30' ||
        undefined,
      { what: 'the new weights in the snapshot', timeoutMs: 20_000 },
    );
  });

  it('carries L7 permissions to the sidecars, the connection let in for the permissions to decide each request', async () => {
    const file = join(mesh.dir, 'intentions.yaml');
    await writeFile(
      file,
      'kind: service-intentions\nname: api\nsources:\n  - name: web\n    permissions:\n      - { action: allow, http: { path_prefix: /api/, methods: [GET] } }\n',
    );
    expect((await mesh.admin(['apply', '-f', file])).exitCode).toBe(0);
    const i = await eventually(
      async () => (await webSnapshot())?.intentions.find((x) => x.source === 'web' && x.destination === 'api'),
      { what: 'the L7 intention in the snapshot', timeoutMs: 20_000 },
    );
    expect(i).toEqual({
      source: 'web',
      destination: 'api',
      action: 'allow',
      permissions: [{ action: 'allow', pathPrefix: '/api/', methods: ['GET'] }],
    });
    expect((await mesh.admin(['delete', 'config', 'service-intentions', 'api'])).exitCode).toBe(0);
  });

  it('goes back to no policy when the entries are deleted', async () => {
    for (const kind of ['service-router', 'service-splitter', 'service-resolver'])
      expect((await mesh.admin(['delete', 'config', kind, 'api'])).exitCode).toBe(0);
    await eventually(
      async () => ((await webSnapshot())?.upstreams[0] && !(await webSnapshot())!.upstreams[0]!.policy) || undefined,
      {
        what: 'a snapshot without policy',
        timeoutMs: 20_000,
      },
    );
  });
});
