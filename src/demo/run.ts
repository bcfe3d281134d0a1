/**
 * `meshctl demo`: the whole mesh on one machine with one command. Starts a registry (sqlite in
 * a demo directory), three agents on loopback "hosts", two `api` instances and a `web` that
 * calls `api` through its sidecar, allows web → api, sends a steady trickle of traffic, then
 * shows the dashboard (or, headless, runs for a while and prints a summary).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../errors/index.js';
import { ensurePrivateDir } from '../util/fs.js';
import { freePort } from '../util/net.js';
import { LocalMesh } from './cluster.js';
import { apiApp, webApp, type SampleApp } from './apps.js';
import { TrafficGenerator, type TrafficSummary } from './traffic.js';
import { sleep } from '../util/async.js';

export interface DemoOptions {
  dataDir?: string;
  rps?: number;
  /** Called for each step, so the CLI can show progress. */
  progress?: (step: string, state: 'start' | 'done') => void;
  cliEntry?: string;
  /** Aborting stops the start-up between steps (and while waiting for traffic); what started is torn down. */
  signal?: AbortSignal;
}

export interface RunningDemo {
  dir: string;
  mesh: LocalMesh;
  apps: { apiA: SampleApp; apiB: SampleApp; web: SampleApp };
  traffic: TrafficGenerator;
  /** Registry URL, CA file and admin token, for the dashboard. */
  registry: { url: string; caFile: string; token: string };
  stop(): Promise<void>;
}

export interface DemoSummary {
  durationSeconds: number;
  web: TrafficSummary;
  /** Requests per api instance as seen in answers. */
  apiInstances: Record<string, number>;
  successRate: number;
  worked: boolean;
}

/**
 * The demo's loopback "hosts", a block of their own: agents a user (or a test) runs on 127.0.0.2,
 * 127.0.0.3, … pick their mesh ports from the same range, and must never meet the demo's.
 */
const [API_HOST_1, API_HOST_2, WEB_HOST] = ['127.0.100.2', '127.0.100.3', '127.0.100.4'] as const;
/** The api instances' ids, as their answers (and the summary's "api (api-1)" rows) name them. */
const API_INSTANCES = ['api-1', 'api-2'] as const;
// web's sidecar listens for api on web's own host address, so a sidecar of another mesh on this
// machine (on 127.0.0.1:18000, say) is never in the way.
const PREFERRED_UPSTREAM_PORT = 18000;

export async function startDemo(opts: DemoOptions = {}): Promise<RunningDemo> {
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    opts.signal?.throwIfAborted();
    opts.progress?.(what, 'start');
    const r = await fn();
    opts.progress?.(what, 'done');
    return r;
  };
  const dir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'meshctl-demo-')));
  await ensurePrivateDir(dir);
  const mesh = new LocalMesh(dir, opts.cliEntry ? { cliEntry: opts.cliEntry } : {});
  const [idA, idB] = API_INSTANCES;
  const apiA = apiApp(idA, API_HOST_1);
  const apiB = apiApp(idB, API_HOST_2);
  const upstreamPort = await freePort(WEB_HOST, PREFERRED_UPSTREAM_PORT);
  const web = webApp(WEB_HOST, { address: WEB_HOST, port: upstreamPort });
  let traffic: TrafficGenerator | undefined;
  const stop = async () => {
    await traffic?.stop();
    await mesh.stop();
    for (const a of [apiA, apiB, web]) await a.stop();
  };
  try {
    await step('starting the registry (sqlite store, CA, tokens)', () => mesh.startRegistry());
    const [a, b, c] = await step(
      `starting three agents on ${API_HOST_1}, ${API_HOST_2} and ${WEB_HOST} (join tokens scoped to api, api, web)`,
      async () =>
        Promise.all([
          mesh.addAgent('host-1', API_HOST_1, ['api']),
          mesh.addAgent('host-2', API_HOST_2, ['api']),
          mesh.addAgent('host-3', WEB_HOST, ['web']),
        ]),
    );
    await step('starting the sample apps: api ×2, web', async () => {
      for (const app of [apiA, apiB, web]) await app.start();
    });
    await step(
      `registering api on host-1 and host-2, web on host-3 (upstream api at ${WEB_HOST}:${upstreamPort})`,
      async () => {
        for (const [agent, app] of [
          [a!, apiA],
          [b!, apiB],
        ] as const) {
          await agent.client.register({
            name: 'api',
            port: app.port,
            address: app.address,
            protocol: 'http',
            tags: ['demo'],
            checks: [
              {
                id: 'api-http',
                kind: 'http',
                target: `http://${app.address}:${app.port}/health`,
                intervalMs: 1000,
                timeoutMs: 1000,
              },
            ],
          });
        }
        await c!.client.register({
          name: 'web',
          port: web.port,
          address: web.address,
          protocol: 'http',
          upstreams: [{ service: 'api', localAddress: WEB_HOST, localPort: upstreamPort }],
          checks: [
            {
              id: 'web-http',
              kind: 'http',
              target: `http://${web.address}:${web.port}/health`,
              intervalMs: 1000,
              timeoutMs: 1000,
            },
          ],
        });
      },
    );
    await step('allowing web → api (the default is deny)', async () => {
      await mesh.admin!.putIntention('web', 'api', 'allow', 'made by meshctl demo');
    });
    await step('waiting for the sidecars to carry traffic', () =>
      waitForMesh(WEB_HOST, upstreamPort, API_INSTANCES, opts.signal),
    );
    traffic = new TrafficGenerator({ host: web.address, port: web.port }, opts.rps ?? 20);
    traffic.start();
    return {
      dir,
      mesh,
      apps: { apiA, apiB, web },
      traffic,
      registry: { url: mesh.registryUrl, caFile: mesh.init!.caCertPath, token: mesh.init!.adminToken },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export function summarize(demo: RunningDemo, durationSeconds: number): DemoSummary {
  const web = demo.traffic.summary();
  const successRate = web.requests === 0 ? 0 : web.ok / web.requests;
  const instances = Object.keys(web.byInstance).length;
  return {
    durationSeconds,
    web,
    apiInstances: web.byInstance,
    successRate,
    worked: web.requests > 0 && successRate >= 0.99 && instances >= 2,
  };
}

/**
 * The outbound listener answers once the sidecar has its snapshot, and 200 once an endpoint is
 * healthy and allowed. Traffic starts only once every api instance has answered through it: on
 * a slow host the second instance's check can pass after the first, and a short run would then
 * see one instance and report that the mesh did not work.
 */
async function waitForMesh(
  host: string,
  port: number,
  instances: readonly string[],
  signal: AbortSignal | undefined,
  timeoutMs = 60_000,
): Promise<void> {
  const http = await import('node:http');
  const deadline = Date.now() + timeoutMs;
  const seen = new Set<string>();
  let last = 'no answer';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const answer = await new Promise<{ status: number; body: string }>((resolve) => {
      const req = http.get({ host, port, path: '/', timeout: 2000, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: 0, body: '' }));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ status: 0, body: '' }));
    });
    if (answer.status === 200) {
      seen.add(instanceOf(answer.body));
      if (instances.every((i) => seen.has(i))) return;
      last = `only ${[...seen].sort().join(', ')} answered`;
      await sleep(50);
      continue;
    }
    last = answer.status === 0 ? 'no answer' : `HTTP ${answer.status}`;
    await sleep(250);
  }
  throw new MeshError(
    'MESH_ERR_TIMEOUT',
    `the mesh did not carry web → api within ${timeoutMs / 1000}s (last: ${last})`,
    { hint: 'See the logs in the demo directory.' },
  );
}

function instanceOf(body: string): string {
  try {
    return String((JSON.parse(body) as { instance?: unknown }).instance ?? '');
  } catch {
    return '';
  }
}
