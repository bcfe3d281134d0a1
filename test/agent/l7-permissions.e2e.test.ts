/**
 * L7 permissions on real agents and sidecars (issue 14): the service-intentions example of
 * docs/POLICY.md, applied with `meshctl apply -f`, lets web only `GET /api/*` on api. A GET
 * passes; a DELETE and a GET of /admin get 403 naming the permission, all on one keep-alive
 * connection from web's app to its sidecar and one mesh connection to api's; api's inbound
 * parses HTTP while `search`, a destination without L7 rules, still pipes bytes — both read
 * from the sidecars' own stats through their agent.
 */
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTS } from '../helpers/hosts.js';
import { agentProxies, startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [HOST_WEB, HOST_API] = HOSTS.l7Permissions;

interface InboundStats {
  mode: string;
  connections: { active: number; total: number };
  permissionDenials: Record<string, number>;
}

/** The `GET /stats` of each sidecar an agent runs, by service id. */
async function sidecarStats(agent: MeshAgent): Promise<Record<string, { inbound: InboundStats }>> {
  return Object.fromEntries((await agentProxies(agent.socket)).map((p) => [p.info.serviceId, p.stats]));
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

interface Answer {
  status: number;
  reason: string | undefined;
  body: string;
  /** The client socket's local port: the same for every request on one keep-alive connection. */
  localPort: number | undefined;
}

function request(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: keepAlive, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          reason: res.headers['x-meshctl-reason'] as string | undefined,
          body,
          localPort: req.socket?.localPort,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The service-intentions example of docs/POLICY.md, as the page shows it. */
async function policyExample(): Promise<string> {
  const doc = await readFile(new URL('../../docs/POLICY.md', import.meta.url), 'utf8');
  const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((b) => /^kind: service-intentions$/m.test(b));
  expect(block).toBeDefined();
  return block!;
}

describe('L7 permissions on real agents: web may only GET /api/* on api', () => {
  let mesh: TestMesh;
  let web: MeshAgent;
  let api: MeshAgent;
  const apps: TestApp[] = [];
  const UP_API = 18000 + Math.floor(Math.random() * 500);
  const UP_SEARCH = UP_API + 500;

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'deny' });
    web = await mesh.addAgent('web-host', HOST_WEB!, { services: ['web'] });
    api = await mesh.addAgent('api-host', HOST_API!, { services: ['api', 'search'] });
    for (const name of ['api', 'search']) {
      const app = await startApp(name, HOST_API!);
      apps.push(app);
      await api.register({ name, port: app.port, protocol: 'http' });
    }
    await web.register({
      name: 'web',
      port: 9300,
      protocol: 'http',
      upstreams: [`api:${UP_API}`, `search:${UP_SEARCH}`],
    });
    expect((await mesh.admin(['intention', 'allow', 'web', 'search'])).exitCode).toBe(0);
    const file = join(mesh.dir, 'intentions.yaml');
    await writeFile(file, await policyExample());
    const applied = await mesh.admin(['apply', '-f', file]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    // Both sidecars serve once web's GET passes on api and search answers.
    await eventually(async () => (await request(UP_API, 'GET', '/api/ready')).status === 200 || undefined, {
      what: 'web -> api allowed by its L7 permission',
      timeoutMs: 60_000,
    });
    await eventually(async () => (await request(UP_SEARCH, 'GET', '/')).status === 200 || undefined, {
      what: 'web -> search allowed',
      timeoutMs: 30_000,
    });
  }, 150_000);

  afterAll(async () => {
    keepAlive.destroy();
    for (const a of apps) await a.stop();
    await mesh?.close();
  });

  it('a GET passes; a DELETE and a GET of /admin get 403 naming the permission, on the same keep-alive connections', async () => {
    const before = (await sidecarStats(api)).api!.inbound;
    const ok = await request(UP_API, 'GET', '/api/users');
    const del = await request(UP_API, 'DELETE', '/api/users');
    const admin = await request(UP_API, 'GET', '/admin');
    const again = await request(UP_API, 'GET', '/api/users/7');

    expect(ok).toMatchObject({ status: 200, reason: undefined });
    expect(JSON.parse(ok.body)).toMatchObject({ app: 'api', path: '/api/users' });
    expect(del).toMatchObject({ status: 403, reason: 'intention-deny web -> api (permission 3: /)' });
    expect(admin).toMatchObject({ status: 403, reason: 'intention-deny web -> api (permission 1: /admin)' });
    expect(again.status).toBe(200);
    // One connection from the app to web's sidecar for all four...
    expect(new Set([ok, del, admin, again].map((a) => a.localPort)).size).toBe(1);
    // ...and no new mesh connection into api: the refusals kept the connection open.
    const after = (await sidecarStats(api)).api!.inbound;
    expect(after.connections.total).toBe(before.connections.total);
    expect(after.permissionDenials).toMatchObject({
      'intention-deny web -> api (permission 3: /)': 1,
      'intention-deny web -> api (permission 1: /admin)': 1,
    });
  });

  it("api's inbound parses HTTP; search, a destination without L7 rules, still pipes bytes (the sidecars' stats say so)", async () => {
    const stats = await sidecarStats(api);
    expect(stats.api!.inbound.mode).toBe('http');
    expect(stats.search!.inbound.mode).toBe('pipe');
    expect((await request(UP_SEARCH, 'GET', '/admin')).status).toBe(200);
  });
});
