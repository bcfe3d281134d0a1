/**
 * Traffic policy as a user sees it, on real agents and sidecars (issue 14's done-when): `api`
 * runs as v1 (two instances) and v2 (two instances), `web` calls it through its sidecar, and
 * `meshctl apply -f` of a resolver, splitter and router decides where each request goes:
 * a 90/10 split over 2,000 requests lands within 5 sigma of the binomial; a header route
 * reaches only v2; a prefix route reaches v2 with the rewritten path; a cookie hash keeps one
 * cookie on one instance; a subset without instances answers 503 naming the subset and the
 * route; a WebSocket upgrade takes the same routes; `meshctl status --json` shows the figures
 * per subset, and the live dashboard (in tmux) api's routes, split and per-subset counts; changing the split during a steady loop drops no request.
 * Loopback block HOSTS.trafficPolicy (127.0.11.10-14); web's upstream port is in policy's
 * range 24500–24599 (TEAM.md).
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTS } from '../helpers/hosts.js';
import { startApp, startMesh, type MeshAgent, type TestApp, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';
import { CLI } from '../helpers/cli.js';
import { startTerminal } from '../helpers/tmux.js';

const [HOST_WEB, HOST_V1, HOST_V1B, HOST_V2, HOST_V2B] = HOSTS.trafficPolicy;
const UP = 24510;

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });

interface Answer {
  status: number;
  app: string | undefined;
  path: string | undefined;
  headers: Record<string, string>;
  reason: string | undefined;
}

/** One request from web's app through web's sidecar to api. */
function call(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: UP, path, headers, agent: keepAlive }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        let parsed: { app?: string; path?: string; headers?: Record<string, string> } = {};
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          // a mesh answer: plain text
        }
        resolve({
          status: res.statusCode ?? 0,
          app: parsed.app,
          path: parsed.path,
          headers: parsed.headers ?? {},
          reason: res.headers['x-meshctl-reason'] as string | undefined,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

interface Tunnel {
  status: number;
  app: string | undefined;
  path: string | undefined;
  /** What the app sent back through the tunnel for `ping`, or the mesh's reason. */
  echoed: string;
  reason: string | undefined;
}

/** A WebSocket-style upgrade from web's app through the sidecars; on 101, one exchange through the tunnel. */
function upgrade(path: string, headers: Record<string, string> = {}): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: UP,
      path,
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          app: undefined,
          path: undefined,
          echoed: '',
          reason: res.headers['x-meshctl-reason'] as string | undefined,
        }),
      );
    });
    req.on('upgrade', (res, socket) => {
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString();
        if (!got.endsWith('ping')) return;
        socket.destroy();
        resolve({
          status: res.statusCode ?? 0,
          app: res.headers['x-app'] as string | undefined,
          path: res.headers['x-path'] as string | undefined,
          echoed: got,
          reason: undefined,
        });
      });
      socket.write('ping');
    });
    req.end();
  });
}

interface SubsetFigures {
  subset: string;
  requests: number;
  failed: number;
}

const RESOLVER = `kind: service-resolver
name: api
default_subset: v1
subsets:
  v1: { filter: 'Service.Meta.version == v1' }
  v2: { filter: 'Service.Meta.version == v2' }
  v3: { filter: 'Service.Meta.version == v3' }
load_balancer:
  policy: ring_hash
  hash_policies:
    - { field: cookie, field_value: session }
`;
const SPLITTER = (v1: number, v2: number) => `kind: service-splitter
name: api
splits:
  - { weight: ${v1}, service_subset: v1 }
  - { weight: ${v2}, service_subset: v2 }
`;
const ROUTER = `kind: service-router
name: api
routes:
  - match: { http: { header: [{ name: x-canary, exact: "1" }] } }
    destination: { service_subset: v2 }
  - match: { http: { path_prefix: /v2/ } }
    destination: { service_subset: v2, prefix_rewrite: /, request_headers: { set: { x-routed: v2-prefix } } }
  - match: { http: { path_prefix: /v3/ } }
    destination: { service_subset: v3 }
`;

const isV2 = (app: string | undefined) => app === 'api-v2' || app === 'api-v2b';

describe('traffic policy on real agents and sidecars', () => {
  let mesh: TestMesh;
  let web: MeshAgent;
  const apps: TestApp[] = [];

  async function apply(name: string, yaml: string): Promise<void> {
    const file = join(mesh.dir, name);
    await writeFile(file, yaml);
    const r = await mesh.admin(['apply', '-f', file]);
    expect(r.exitCode, r.stderr).toBe(0);
  }

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'allow' });
    web = await mesh.addAgent('web-host', HOST_WEB!, { services: ['web'] });
    const api = [
      ['api-v1', HOST_V1!, 'v1'],
      ['api-v1b', HOST_V1B!, 'v1'],
      ['api-v2', HOST_V2!, 'v2'],
      ['api-v2b', HOST_V2B!, 'v2'],
    ] as const;
    await Promise.all(
      api.map(async ([name, host, version]) => {
        const agent = await mesh.addAgent(name, host, { services: ['api'] });
        const app = await startApp(name, host);
        apps.push(app);
        await agent.register({ name: 'api', port: app.port, protocol: 'http', meta: { version } });
      }),
    );
    await web.register({ name: 'web', port: 9300, protocol: 'http', upstreams: [`api:${UP}`] });
    // All four instances answer before any policy: today's behaviour, round robin over them.
    const seen = new Set<string>();
    await eventually(
      async () => {
        const a = await call('/').catch(() => undefined);
        if (a?.status === 200 && a.app) seen.add(a.app);
        return seen.size === 4 || undefined;
      },
      { what: 'all four api instances answering through web', timeoutMs: 90_000 },
    );
    await apply('policy.yaml', `${RESOLVER}---\n${SPLITTER(90, 10)}---\n${ROUTER}`);
    // The policy is live once the header route answers from v2 only.
    await eventually(
      async () => {
        for (let i = 0; i < 10; i++) if (!isV2((await call('/', { 'x-canary': '1' })).app)) return undefined;
        return true;
      },
      { what: 'the router live in web sidecar', timeoutMs: 30_000 },
    );
  }, 180_000);

  afterAll(async () => {
    keepAlive.destroy();
    for (const a of apps) await a.stop();
    await mesh?.close();
  });

  it('a 90/10 split sends 10 % to v2 over 2,000 requests (within 5 sigma of the binomial)', async () => {
    let v2 = 0;
    const batch = 20;
    for (let i = 0; i < 2000; i += batch) {
      const answers = await Promise.all(Array.from({ length: batch }, () => call('/split')));
      for (const a of answers) {
        expect(a.status).toBe(200);
        if (isV2(a.app)) v2 += 1;
      }
    }
    // n p = 200, sigma = sqrt(2000 * 0.1 * 0.9) ≈ 13.4: 5 sigma is ±67.
    expect(Math.abs(v2 - 200)).toBeLessThan(67);
  }, 120_000);

  it('a route on the header x-canary: 1 reaches only v2, and both of its instances', async () => {
    const apps = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const a = await call(`/c?u=${i}`, { 'x-canary': '1', cookie: `session=user-${i}` });
      expect(a.status).toBe(200);
      apps.add(a.app!);
    }
    expect([...apps].sort()).toEqual(['api-v2', 'api-v2b']);
  });

  it('a path prefix route reaches v2 with the rewritten path and its header change', async () => {
    for (let i = 0; i < 20; i++) {
      const a = await call('/v2/users/7?full=1');
      expect(a.status).toBe(200);
      expect(isV2(a.app)).toBe(true);
      expect(a.path).toBe('/users/7?full=1');
      expect(a.headers['x-routed']).toBe('v2-prefix');
    }
  });

  it('the ring hash on the cookie keeps one cookie on one instance over 200 requests', async () => {
    const per = new Map<string, Set<string>>();
    for (let i = 0; i < 200; i++) {
      const user = `user-${i % 5}`;
      const a = await call('/sticky', { 'x-canary': '1', cookie: `theme=dark; session=${user}` });
      expect(a.status).toBe(200);
      const s = per.get(user) ?? new Set<string>();
      s.add(a.app!);
      per.set(user, s);
    }
    for (const [user, s] of per) expect(s.size, `${user} went to ${[...s].join(', ')}`).toBe(1);
  });

  it('a subset with no instance answers 503 naming the subset and the route', async () => {
    const a = await call('/v3/x');
    expect(a.status).toBe(503);
    expect(a.reason).toBe('no-healthy-endpoints api/v3 (route 3 of service-router api)');
  });

  it('a WebSocket upgrade takes the routes: the header route and the prefix route (rewritten) tunnel to v2 only', async () => {
    for (let i = 0; i < 10; i++) {
      const t = await upgrade('/ws', { 'x-canary': '1', cookie: `session=ws-${i}` });
      expect(t.status).toBe(101);
      expect(isV2(t.app), `went to ${t.app}`).toBe(true);
      expect(t.echoed).toBe(`${t.app}:ping`);
    }
    const t = await upgrade('/v2/chat?room=7');
    expect([t.status, isV2(t.app), t.path]).toEqual([101, true, '/chat?room=7']);
    const none = await upgrade('/v3/ws');
    expect([none.status, none.reason]).toEqual([503, 'no-healthy-endpoints api/v3 (route 3 of service-router api)']);
  });

  it('meshctl status --json shows the figures per subset: v1 and v2 served, v3 failed', async () => {
    // The sidecars report every few seconds; the registry's window holds the tests above.
    const subsets = await eventually(
      async () => {
        const r = await mesh.admin(['status', '--json']);
        expect(r.exitCode, r.stderr).toBe(0);
        const s = JSON.parse(r.stdout) as {
          metrics?: { services: Array<{ name: string; subsets?: SubsetFigures[] }> };
        };
        const got = s.metrics?.services.find((x) => x.name === 'api')?.subsets ?? [];
        const by = new Map(got.map((x) => [x.subset, x]));
        const ok = (by.get('api/v1')?.requests ?? 0) > 0 && (by.get('api/v2')?.requests ?? 0) > 0;
        return ok && (by.get('api/v3')?.failed ?? 0) > 0 ? by : undefined;
      },
      { what: 'per-subset figures of api in meshctl status', timeoutMs: 30_000 },
    );
    expect(subsets.get('api/v1')!.failed).toBe(0);
    expect(subsets.get('api/v2')!.failed).toBe(0);
    expect(subsets.get('api/v3')!.failed).toBe(subsets.get('api/v3')!.requests);
  });

  it("meshctl status, live in a terminal: api's detail shows the applied routes, split and subsets, and what each subset served", async () => {
    // The registry's figures cover the last 10 s: traffic runs while the dashboard is read, one
    // request each by the split (v1 or v2), by the header route (v2) and to the empty v3.
    let stop = false;
    const traffic = (async () => {
      while (!stop) await Promise.all([call('/split'), call('/dash', { 'x-canary': '1' }), call('/v3/dash')]);
    })();
    const tty = await startTerminal({
      name: 'traffic-policy',
      command: [process.execPath, CLI, 'status', '--interval', '300ms'],
      env: {
        ...mesh.env,
        MESHCTL_REGISTRY: mesh.registryUrl,
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: mesh.dir,
        LANG: 'C.UTF-8',
        TERM: 'xterm-256color',
      },
      columns: 120,
      rows: 50,
    });
    try {
      await tty.waitScreen((s) => /›\s+api\s/.test(s), 'api selected in the overview');
      await tty.keys('Enter');
      /** A subset's row: RPS, OK%, P99, REQS (requests in the window). */
      const row = (s: string, label: string) =>
        new RegExp(
          `^\\s*${label.replace(/[()]/g, '\\$&')}\\s+Service\\.Meta\\.version == v\\d\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)\\s+(\\d\\S*)\\s*$`,
          'm',
        ).exec(s);
      const served = (s: string, label: string) => (row(s, label)?.[4] ?? '0') !== '0';
      const screen = await tty.waitScreen(
        (s) => served(s, 'v1 (default)') && served(s, 'v2') && served(s, 'v3'),
        "api's detail with requests counted on v1, v2 and v3",
        30_000,
      );
      expect(screen).toContain('TRAFFIC POLICY  balancer ring_hash (cookie session)');
      expect(screen).toMatch(/^\s*1\s+header x-canary = 1\s+→ v2\s*$/m);
      expect(screen).toMatch(/^\s*2\s+path \/v2\/\*\s+→ v2, rewrite to \/\s*$/m);
      expect(screen).toMatch(/^\s*3\s+path \/v3\/\*\s+→ v3\s*$/m);
      // Configured weights beside the share each target really got (here also the routes' traffic).
      expect(screen).toMatch(/SPLIT {2}v1 90% \(live [\d.]+%\) {3}v2 10% \(live [\d.]+%\)/);
      // v1 and v2 answered everything; every request to v3 got the mesh's 503.
      expect(row(screen, 'v1 (default)')?.[2]).toBe('100%');
      expect(row(screen, 'v2')?.[2]).toBe('100%');
      expect(row(screen, 'v3')?.[2]).toBe('0.0%');
      await tty.keys('q');
      await eventually(async () => !(await tty.running()), { timeoutMs: 10_000, what: 'the dashboard to quit on q' });
    } finally {
      stop = true;
      await traffic;
      await tty.close();
    }
  }, 60_000);

  it('changing the split with apply -f during a steady loop drops no request', async () => {
    let stop = false;
    const statuses = new Map<number, number>();
    const after: string[] = [];
    let changed = false;
    /** When `apply` returned, and the start of the last request after it that v1 still answered. */
    let appliedAt = 0;
    let lastV1After = 0;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const startedAt = performance.now();
        const a = await call('/steady');
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        if (changed) after.push(a.app ?? '?');
        if (changed && !isV2(a.app) && startedAt > appliedAt) lastV1After = Math.max(lastV1After, startedAt);
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 300));
    await apply('split-0-100.yaml', SPLITTER(0, 100));
    appliedAt = performance.now();
    changed = true;
    // The new split is live once v2 alone answers.
    await eventually(
      async () => {
        const n = after.length;
        return n > 40 && after.slice(n - 40).every(isV2) ? true : undefined;
      },
      { what: 'the 0/100 split live', timeoutMs: 30_000 },
    );
    // A figure, not a bound (timings never decide a test here): how long after `apply -f`
    // returned a request could still start and go by the old split (0: none could). It is
    // the registry's push through web's agent to its sidecar, less the CLI's own exit.
    const ms = lastV1After === 0 ? 0 : lastV1After - appliedAt;
    console.log(`traffic-policy: last request on the old split started ${ms.toFixed(1)} ms after apply -f returned`);
    await apply('split-50-50.yaml', SPLITTER(50, 50));
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(loops);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(100);
    expect(Object.fromEntries(statuses)).toEqual({ 200: total });
  }, 60_000);
});
