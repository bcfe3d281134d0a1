/**
 * A sidecar told to stop is withdrawn from its callers before it drains (issue 11.5): on
 * SIGTERM api's sidecar tells its agent, the agent marks the instance draining (critical) in
 * the registry, and web's sidecar drops the endpoint while api's still finishes the request in
 * flight. Since the http inbound pipes bytes it cannot close web's keep-alive connections, so
 * without this withdrawal web keeps sending new requests to the draining sidecar until it exits.
 * Once the agent's relaunched sidecar serves, the instance is back. Real processes throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { agentProxies, getStatus, startMesh, type MeshAgent, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';
import { HOSTS } from '../helpers/hosts.js';
import { alive } from '../helpers/proc.js';

const [WEB_HOST, API_HOST] = HOSTS.withdraw;
const UPSTREAM_PORT = 24020;

interface Instance {
  id: string;
  node: string;
  status: string;
  drainingSince?: string;
}

/** An app whose /hold answers only when the test lets it; / (and the agent's check) at once. */
async function holdingApp(address: string) {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end(JSON.stringify({ app: 'api', path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, address, r));
  return {
    port: (server.address() as AddressInfo).port,
    held,
    release: () => held.splice(0).forEach((r) => r.end('released')),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function getHold(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/hold', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}

describe('a sidecar told to stop is withdrawn from callers before it drains', () => {
  let mesh: TestMesh;
  let web: MeshAgent;
  let api: MeshAgent;
  let app: Awaited<ReturnType<typeof holdingApp>>;

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'allow', leaseTtl: '5s' });
    web = await mesh.addAgent('w-web', WEB_HOST!);
    api = await mesh.addAgent('w-api', API_HOST!);
    app = await holdingApp(API_HOST!);
    await api.register({
      name: 'api',
      port: app.port,
      protocol: 'http',
      extra: ['--check', `http://${API_HOST}:${app.port}/`, '--interval', '500ms'],
    });
    await web.register({ name: 'web', port: 9300, protocol: 'http', upstreams: [`api:${UPSTREAM_PORT}`] });
    await eventually(async () => (await getStatus(UPSTREAM_PORT, { timeoutMs: 3000 })) === 200, {
      what: 'web -> api through the sidecars',
      timeoutMs: 45_000,
    });
  }, 90_000);

  afterAll(async () => {
    app?.release();
    await mesh?.close();
    await app?.close();
  });

  const apiInstance = async () =>
    (await mesh.adminJson<{ instances: Instance[] }>(['catalog', 'instances', 'api'])).instances[0];
  const webLists = async () => {
    const [p] = await agentProxies(web.socket);
    return Object.keys(p?.stats?.upstreams?.api?.endpoints ?? {});
  };

  it('marks the instance draining in the registry at once, web drops it while the request in flight finishes, and it comes back', async () => {
    const [sidecar] = await agentProxies(api.socket);
    const pid = sidecar!.info.pid;
    expect(await webLists()).toEqual(['api.w-api']);
    expect((await apiInstance())?.status).toBe('passing');

    const inFlight = getHold(UPSTREAM_PORT);
    await eventually(async () => app.held.length === 1, { what: 'the request held at the app' });
    process.kill(pid, 'SIGTERM');

    // While the old sidecar still drains (the held request keeps it), the registry has the
    // instance critical and draining, and web's sidecar no longer lists it.
    const drained = await eventually(
      async () => {
        const i = await apiInstance();
        return i?.drainingSince !== undefined && i;
      },
      { what: 'the registry to have api draining', timeoutMs: 10_000 },
    );
    expect(drained.status).toBe('critical');
    await eventually(async () => (await webLists()).length === 0, { what: "web's sidecar to drop api" });
    expect(alive(pid)).toBe(true);
    expect(app.held.length).toBe(1);

    // The agent's views say draining, not a generic failure.
    const services = await api.cli(['services', '--json']);
    expect(services.exitCode).toBe(0);
    expect(JSON.parse(services.stdout).services[0]).toMatchObject({ id: 'api', draining: true });
    const table = await api.cli(['services']);
    expect(table.stdout).toMatch(/^api\s+\d+\s+http\s+draining\s/m);
    const catalog = await mesh.admin(['catalog', 'instances', 'api']);
    expect(catalog.stdout).toContain('critical (draining)');
    const status = await mesh.admin(['status', '--once']);
    expect(status.stdout).toMatch(/api \(1 draining\)\s+0\/1/);

    // The request in flight finishes with the app's answer; then the agent relaunches the
    // sidecar, and once it serves the instance is passing again and web lists it.
    app.release();
    expect(await inFlight).toEqual({ status: 200, body: 'released' });
    await eventually(async () => !alive(pid), { what: 'the drained sidecar to exit', timeoutMs: 40_000 });
    // It was the sidecar's own notice that withdrew it (not the agent's health tick finding it draining).
    const sidecarLog = await readFile(join(api.dataDir, 'proxies', 'api.log'), 'utf8');
    expect(sidecarLog).toContain('the agent withdrew this instance; draining');
    await eventually(
      async () => {
        const i = await apiInstance();
        return i?.status === 'passing' && i.drainingSince === undefined;
      },
      { what: 'api passing again', timeoutMs: 30_000 },
    );
    await eventually(async () => (await webLists()).length === 1, { what: "web's sidecar to list api again" });
    expect(await getStatus(UPSTREAM_PORT)).toBe(200);
    const after = JSON.parse((await api.cli(['services', '--json'])).stdout).services[0];
    expect(after.draining).toBeUndefined();
  }, 120_000);
});
