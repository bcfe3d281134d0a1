/**
 * The fault suite's mesh: a registry, `api` on two hosts and `web` calling it through its
 * sidecar's upstream listener, on the rel loopback block (127.0.8.x, ports 24100-24299).
 */
import { HOSTS } from '../helpers/hosts.js';
import { getStatus, startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

export interface FaultMesh {
  mesh: TestMesh;
  web: MeshAgent;
  api: [MeshAgent, MeshAgent];
  apps: [TestApp, TestApp];
  /** web's upstream listener for api. */
  port: number;
  close(): Promise<void>;
}

export interface FaultMeshOptions {
  /** web's host, then the two api hosts; default the first three of HOSTS.faults. */
  hosts?: readonly [string, string, string];
  /** Makes the api apps (default: startApp, which answers at once). */
  app?: (name: string, address: string) => Promise<TestApp>;
}

export async function startFaultMesh(port: number, opts: FaultMeshOptions = {}): Promise<FaultMesh> {
  const [hw, h1, h2] = opts.hosts ?? HOSTS.faults;
  const makeApp = opts.app ?? startApp;
  const mesh = await startMesh({ defaultIntention: 'allow', leaseTtl: '5s' });
  const closeAll = async () => mesh.close();
  try {
    const web = await mesh.addAgent('f-web', hw);
    const a1 = await mesh.addAgent('f-api-1', h1);
    const a2 = await mesh.addAgent('f-api-2', h2);
    const apps: [TestApp, TestApp] = [await makeApp('api-1', h1), await makeApp('api-2', h2)];
    for (const [ag, app] of [
      [a1, apps[0]],
      [a2, apps[1]],
    ] as const) {
      await ag.register({
        name: 'api',
        port: app.port,
        address: app.address,
        protocol: 'http',
        extra: ['--check', `http://${app.address}:${app.port}/`, '--interval', '500ms'],
      });
    }
    await web.register({ name: 'web', port: 9300, protocol: 'http', upstreams: [`api:${port}`] });
    await eventually(async () => (await getStatus(port, { timeoutMs: 3000 })) === 200, {
      what: 'web -> api through the sidecars',
      timeoutMs: 45_000,
    });
    return {
      mesh,
      web,
      api: [a1, a2],
      apps,
      port,
      async close() {
        for (const app of apps) await app.stop();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
