/**
 * Resilience as a user sees it (issue 15), with real processes: a registry, three agents on
 * loopback (web, api-1, api-2), their sidecars, and test apps whose behaviour the test sets
 * (answer, fail a share of requests with 503, hang, hold). Settings are changed only with
 * `meshctl apply -f`; figures are read from the web sidecar's `GET /stats` through its agent, and
 * what a user reads is checked too: `meshctl status` (the registry's window) and `meshctl services`
 * on web's host (its agent's window) show the timeouts, ejections and circuit-open lines, and
 * web's agent serves the same totals on `/metrics` (`--metrics-bind`) as Prometheus text.
 * Assertions are on counts and outcomes, never on how long something took (the request rate
 * of the 100 % failing case is printed, not asserted). Loopback block 127.0.14.0/24.
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTS } from '../helpers/hosts.js';
import { agentProxies, startMesh, type MeshAgent, type TestMesh } from '../helpers/mesh.js';
import { eventually } from '../helpers/registry.js';

const [HOST_WEB, HOST_A, HOST_B] = HOSTS.resilience;

type Mode = 'ok' | 'fail-10' | 'fail-all' | 'hang' | 'hold';

/** An api instance the test steers: its mode, and what it saw. */
interface SteeredApp {
  name: string;
  port: number;
  mode: Mode;
  /** Requests it got (every attempt that reached it). */
  seen: number;
  /** POSTs among them. */
  posts: number;
  release(): void;
  stop(): Promise<void>;
}

async function steeredApp(name: string, address: string): Promise<SteeredApp> {
  const held: http.ServerResponse[] = [];
  const app: SteeredApp = {
    name,
    port: 0,
    mode: 'ok',
    seen: 0,
    posts: 0,
    release: () => {
      for (const r of held.splice(0)) r.end(`${name} released`);
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    app.seen += 1;
    if (req.method === 'POST') app.posts += 1;
    req.resume();
    const fail = app.mode === 'fail-all' || (app.mode === 'fail-10' && app.seen % 10 === 0);
    if (fail) {
      res.writeHead(503);
      res.end(`${name} failed`);
    } else if (app.mode === 'hang' || app.mode === 'hold') held.push(res);
    else res.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  app.port = (server.address() as AddressInfo).port;
  return app;
}

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function request(port: number, method = 'GET', path = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? 'order' : undefined);
  });
}

/** A request on a connection of its own (no keep-alive). */
function requestFresh(port: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

/** `n` requests, `concurrency` at a time. */
async function load(port: number, n: number, concurrency: number, method = 'GET'): Promise<Reply[]> {
  const out: Reply[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next += 1;
        out.push(await request(port, method));
      }
    }),
  );
  return out;
}

describe('resilience through real agents and sidecars', () => {
  let mesh: TestMesh;
  let web: MeshAgent;
  const apps: SteeredApp[] = [];
  const UP = 24810;
  /** web's agent serves Prometheus metrics here. */
  const METRICS = 24811;

  /** web's sidecar figures for the api upstream, as its agent reports them. */
  async function upstream(): Promise<Record<string, any>> {
    return (await agentProxies(web.socket)).find((p) => p.info.serviceId === 'web')?.stats?.upstreams?.api ?? {};
  }

  /** Applies service-defaults for api (YAML body after kind/name) and waits until web's sidecar serves it. */
  async function applyDefaults(body: string, check: (u: Record<string, any>) => boolean): Promise<void> {
    const file = join(mesh.dir, `api-defaults-${Date.now()}.yaml`);
    await writeFile(file, `kind: service-defaults\nname: api\nprotocol: http\n${body}`);
    const r = await mesh.admin(['apply', '-f', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    await eventually(async () => check(await upstream()) || undefined, {
      what: 'web sidecar serving the applied settings',
      timeoutMs: 30_000,
    });
  }

  const figures = async () => (await upstream()).resilience as Record<string, any>;

  /**
   * Waits until what a user reads shows `want` of api's resilience in the window: `meshctl status
   * --json` (callers' figures merged by the registry), `meshctl services --json` on web's host
   * (its sidecar's, by its agent), and the text of both, a line under the service (api in
   * status, `web → api` in services). Polled: the agent reports every 2 s, the window is 10 s.
   */
  async function userSees(want: (w: Record<string, any>) => boolean, words: RegExp): Promise<void> {
    await eventually(
      async () => {
        const st = await mesh.adminJson<{ metrics: { services: Array<{ name: string; resilience: any }> } }>([
          'status',
        ]);
        return want(st.metrics.services.find((x) => x.name === 'api')?.resilience ?? {}) || undefined;
      },
      { what: "meshctl status --json showing api's resilience", timeoutMs: 20_000 },
    );
    await eventually(
      async () => {
        const sv = await web.cli(['services', '--json']);
        const { services } = JSON.parse(sv.stdout) as { services: Array<{ id: string; resilience?: any }> };
        const r = services.find((x) => x.id === 'web')?.resilience;
        return want(r?.upstreams?.find((u: { service: string }) => u.service === 'api') ?? {}) || undefined;
      },
      { what: "meshctl services --json showing web's resilience towards api", timeoutMs: 20_000 },
    );
    await eventually(
      async () => {
        const lines = (await mesh.admin(['status', '--once'])).stdout.split('\n');
        const at = lines.findIndex((l) => /^\s+api\s/.test(l));
        return (at >= 0 && words.test(lines[at + 1] ?? '') && lines[at + 1]!.includes('↳ resilience:')) || undefined;
      },
      { what: 'meshctl status --once with a resilience line under api', timeoutMs: 20_000 },
    );
    await eventually(
      async () => {
        const text = (await web.cli(['services'])).stdout;
        return text.split('\n').some((l) => l.startsWith('  web → api: ') && words.test(l)) || undefined;
      },
      { what: 'meshctl services with a web → api resilience line', timeoutMs: 20_000 },
    );
  }
  /** web's agent's /metrics, parsed: the value of `family` for the api upstream as a whole (endpoint=""). */
  async function scrapeApi(family: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const text = await new Promise<string>((resolve, reject) => {
      http
        .get(`http://${HOST_WEB}:${METRICS}/metrics`, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
    const families = parsePrometheusTextFormat(text) as Array<{
      name: string;
      metrics: Array<{ value: string; labels: Record<string, string> }>;
    }>;
    const m = families
      .find((f) => f.name === family)
      ?.metrics.find(
        (x) =>
          x.labels.service === 'web' &&
          x.labels.upstream === 'api' &&
          x.labels.endpoint === '' &&
          Object.entries(labels).every(([k, v]) => x.labels[k] === v),
      );
    return m === undefined ? undefined : Number(m.value);
  }

  /** Waits until /metrics shows at least `want` for each family (the agent reports every 2 s). */
  async function metricsShow(want: Array<[family: string, atLeast: number, labels?: Record<string, string>]>) {
    await eventually(
      async () => {
        for (const [family, atLeast, labels] of want) {
          const v = await scrapeApi(family, labels);
          if (v === undefined || v < atLeast) return undefined;
        }
        return true;
      },
      { what: `web's agent's /metrics showing ${want.map(([f, n]) => `${f} >= ${n}`).join(', ')}`, timeoutMs: 20_000 },
    );
  }

  const reset = () => {
    for (const a of apps) {
      a.mode = 'ok';
      a.seen = 0;
      a.posts = 0;
    }
  };

  beforeAll(async () => {
    mesh = await startMesh({ defaultIntention: 'allow' });
    web = await mesh.addAgent('web-host', HOST_WEB!, {
      services: ['web'],
      agentArgs: ['--metrics-bind', `${HOST_WEB}:${METRICS}`],
    });
    for (const [name, host] of [
      ['api-1', HOST_A!],
      ['api-2', HOST_B!],
    ] as const) {
      const a = await mesh.addAgent(name, host, { services: ['api'] });
      const app = await steeredApp(name, host);
      apps.push(app);
      await a.register({ name: 'api', port: app.port, protocol: 'http' });
    }
    await web.register({ name: 'web', port: 9300, protocol: 'http', upstreams: [`api:${UP}`] });
    await eventually(
      async () => {
        const rs = await load(UP, 6, 1).catch(() => []);
        return new Set(rs.filter((r) => r.status === 200).map((r) => r.body)).size === 2 || undefined;
      },
      { what: 'web reaching both api instances', timeoutMs: 90_000 },
    );
  }, 180_000);

  afterAll(async () => {
    agent.destroy();
    for (const a of apps) {
      a.release();
      await a.stop();
    }
    await mesh?.close();
  });

  it('apps failing 100 %: the extra load retries add stays inside the budget (<= 1.25x at 200 req/s), not 2x', async () => {
    reset();
    // The default budget is what limits: concurrent retries (3 by default) are let up, ejection off.
    await applyDefaults(
      'limits: { max_concurrent_retries: 1000 }\npassive_health_check: { max_failures: 0 }\n',
      (u) => u.settings?.limits?.maxConcurrentRetries === 1000,
    );
    for (const a of apps) a.mode = 'fail-all';
    const before = await figures();
    const started = performance.now();
    const replies = await load(UP, 2000, 16);
    const seconds = (performance.now() - started) / 1000;
    const after = await figures();
    const attempts = apps.reduce((n, a) => n + a.seen, 0);
    const exhausted = after.retryBudgetExhausted - before.retryBudgetExhausted;
    console.log(
      `100 % 503: ${(2000 / seconds).toFixed(0)} req/s, ${attempts} attempts for 2000 requests (${(attempts / 2000).toFixed(3)}x), ${exhausted} retries refused by the budget`,
    );
    expect(replies.every((r) => r.status === 503)).toBe(true);
    // The budget: retries over its 10 s window at most 20 % of the requests + 10 per second (100
    // for a whole window; this test runs first, so the window holds only its own requests): at
    // 2,000 requests that is at most 1.25x, whatever the rate.
    expect(attempts).toBeLessThanOrEqual(2000 * 1.2 + 10 * 10);
    // It was spent, not left unused, and the app was told why.
    expect(exhausted).toBeGreaterThan(0);
    expect(replies.filter((r) => r.headers['x-meshctl-reason'] === 'retry-budget-exhausted api').length).toBe(
      exhausted,
    );
    // The same totals on /metrics, as Prometheus reads them.
    await metricsShow([
      ['meshctl_upstream_retries_total', after.retries],
      ['meshctl_upstream_retry_budget_exhausted_total', after.retryBudgetExhausted],
    ]);
  }, 120_000);

  it('apps failing 10 % of GETs with 503: callers see >= 98 % success over 2,000 requests, retries inside the budget', async () => {
    reset();
    // The default retries and budget; outlier ejection off, so both instances stay in (and no
    // ejection outlives this test into the next ones).
    await applyDefaults(
      'passive_health_check: { max_failures: 0 }\n',
      (u) => u.settings?.outlier?.consecutiveErrors === 0,
    );
    for (const a of apps) a.mode = 'fail-10';
    const before = await figures();
    // Two at a time: fewer retries in flight than max_concurrent_retries (3), so the limit never
    // refuses one and what is measured is the retry policy and the budget.
    const replies = await load(UP, 2000, 2);
    const ok = replies.filter((r) => r.status === 200).length;
    const after = await figures();
    const retries = after.retries - before.retries;
    const firstFailures = apps.reduce((n, a) => n + a.seen, 0) - 2000;
    console.log(
      `10 % 503: ${ok}/2000 succeeded, ${retries} retries, ${after.retryBudgetExhausted - before.retryBudgetExhausted} refused by the budget`,
    );
    expect(ok / 2000).toBeGreaterThanOrEqual(0.98);
    // Every failed first attempt was retried once, and the budget refused none: 10 % is inside 20 %.
    expect(retries).toBe(firstFailures);
    expect(after.retryBudgetExhausted - before.retryBudgetExhausted).toBe(0);
    expect(retries).toBeLessThanOrEqual(0.2 * 2000 + 10 * 10);
    // Without retries, the same apps give about 90 %: the retries made the difference.
    expect(retries).toBeGreaterThanOrEqual(150);
  }, 120_000);

  it('a POST is not retried on a 503 by default; it is when the settings say so (meshctl apply -f)', async () => {
    reset();
    apps[0]!.mode = 'fail-all';
    apps[1]!.mode = 'fail-all';
    const r = await request(UP, 'POST');
    expect(r.status).toBe(503);
    expect(r.headers['x-meshctl-attempts']).toBe('1');
    expect(apps[0]!.posts + apps[1]!.posts).toBe(1);

    await applyDefaults(
      'retry: { retry_non_idempotent: true }\n',
      (u) => u.settings?.retry?.retryNonIdempotent === true,
    );
    // The snapshot with the setting has reached the sidecar when a POST gets 2 attempts.
    const again = await eventually(
      async () => {
        const x = await request(UP, 'POST');
        return x.headers['x-meshctl-attempts'] === '2' ? x : undefined;
      },
      { what: 'a POST retried once', timeoutMs: 30_000 },
    );
    expect(again.status).toBe(503);
    expect(again.headers['x-meshctl-attempts']).toBe('2');
  }, 60_000);

  it("a route's own request timeout and retries override the service-defaults' (service-router, meshctl apply -f)", async () => {
    reset();
    // The service's: a 3 s request timeout, no retries, no ejection (both instances stay in).
    await applyDefaults(
      'request_timeout: 3s\nretry: { num_retries: 0 }\npassive_health_check: { max_failures: 0 }\n',
      (u) => u.settings?.requestTimeoutMs === 3000 && u.settings?.retry?.numRetries === 0,
    );
    const router = join(mesh.dir, 'api-router.yaml');
    await writeFile(
      router,
      [
        'kind: service-router',
        'name: api',
        'routes:',
        '  - match: { http: { path_prefix: /quick } }',
        '    destination: { request_timeout: 500ms }',
        '  - match: { http: { path_prefix: /again } }',
        '    destination: { num_retries: 1, retry_on: [5xx] }',
        '',
      ].join('\n'),
    );
    const applied = await mesh.admin(['apply', '-f', router]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    try {
      await eventually(async () => ((await upstream()).policy?.routes?.length ?? 0) >= 3 || undefined, {
        what: "web's sidecar serving the router",
        timeoutMs: 30_000,
      });
      // Retries: the route's one retry against the service's none.
      for (const a of apps) a.mode = 'fail-all';
      const again = await request(UP, 'GET', '/again/x');
      expect([again.status, again.headers['x-meshctl-attempts']]).toEqual([503, '2']);
      const plain = await request(UP, 'GET', '/x');
      expect([plain.status, plain.headers['x-meshctl-attempts']]).toEqual([503, '1']);
      // Timeouts: the route's 500 ms against the service's 3 s, each named in the reason.
      for (const a of apps) a.mode = 'hang';
      const quick = await request(UP, 'GET', '/quick/x');
      expect([quick.status, quick.headers['x-meshctl-reason']]).toEqual([504, 'request-timeout api 500ms']);
      const slow = await request(UP, 'GET', '/x');
      expect([slow.status, slow.headers['x-meshctl-reason']]).toEqual([504, 'request-timeout api 3s']);
    } finally {
      for (const a of apps) {
        a.mode = 'ok';
        a.release();
      }
      const del = await mesh.admin(['delete', 'config', 'service-router', 'api']);
      expect(del.exitCode, del.stderr).toBe(0);
      await eventually(async () => (await upstream()).policy === undefined || undefined, {
        what: "web's sidecar without the router",
        timeoutMs: 30_000,
      });
    }
  }, 120_000);

  it('an instance that hangs: its requests time out with 504 and the reason, then it is ejected until it answers again', async () => {
    reset();
    await applyDefaults(
      'request_timeout: 1s\nretry: { num_retries: 0 }\npassive_health_check: { max_failures: 2, base_ejection_time: 3s }\n',
      (u) => u.settings?.requestTimeoutMs === 1000 && u.settings?.outlier?.consecutiveErrors === 2,
    );
    // Successes on both first, so no failure counted before the change carries over.
    await load(UP, 4, 1);
    apps[0]!.mode = 'hang';
    const ejectionsBefore = (await figures()).ejections as number;
    const replies = [];
    for (let i = 0; i < 12; i++) replies.push(await request(UP));
    const timedOut = replies.filter((r) => r.status === 504);
    // Round robin sends api-1 every other request until it has failed twice in a row: then it is out.
    expect(timedOut.map((r) => r.headers['x-meshctl-reason'])).toEqual([
      'request-timeout api 1s',
      'request-timeout api 1s',
    ]);
    expect(replies.filter((r) => r.status === 200).map((r) => r.body)).toEqual(Array(10).fill('api-2'));
    const f = await figures();
    expect(f.ejections).toBe(ejectionsBefore + 1);
    const eps = Object.values((await upstream()).endpoints as Record<string, { ejected: boolean; port: number }>);
    expect(eps.filter((e) => e.ejected)).toHaveLength(1);
    // What the user reads: the two timeouts and the ejection, in the window (the ejection lasts 3 s).
    await userSees((w) => w.timeouts >= 2 && w.ejections >= 1, /\b\d+ timeouts?\b.*\b\d+ ejections?\b/);
    await metricsShow([
      ['meshctl_upstream_timeouts_total', f.timeouts],
      ['meshctl_upstream_ejections_total', f.ejections],
    ]);
    // It answers again: once its ejection time (3 s) is up it gets requests again.
    apps[0]!.release();
    apps[0]!.mode = 'ok';
    await eventually(async () => (await load(UP, 4, 1)).some((r) => r.body === 'api-1') || undefined, {
      what: 'api-1 back in the rotation',
      timeoutMs: 30_000,
    });
  }, 120_000);

  it('overload past max_concurrent_requests: the excess gets an immediate 503 circuit-open, the rest succeed', async () => {
    reset();
    await applyDefaults(
      'limits: { max_concurrent_requests: 4 }\n',
      (u) => u.settings?.limits?.maxConcurrentRequests === 4,
    );
    for (const a of apps) a.mode = 'hold';
    const held = Array.from({ length: 4 }, () => request(UP));
    await eventually(async () => apps[0]!.seen + apps[1]!.seen === 4 || undefined, { what: 'four requests held' });
    const before = (await figures()).circuitOpen['max-requests'] as number;
    const refused = await Promise.all(Array.from({ length: 6 }, () => request(UP)));
    expect(refused.map((r) => [r.status, r.headers['x-meshctl-reason']])).toEqual(
      Array(6).fill([503, 'circuit-open api max-requests 4']),
    );
    // The apps never saw the refused ones.
    expect(apps[0]!.seen + apps[1]!.seen).toBe(4);
    expect((await figures()).circuitOpen['max-requests']).toBe(before + 6);
    await userSees((w) => (w.circuitOpen?.['max-requests'] ?? 0) >= 6, /\b\d+ circuit-open\b/);
    await metricsShow([['meshctl_upstream_circuit_open_total', before + 6, { limit: 'max-requests' }]]);
    for (const a of apps) {
      a.mode = 'ok';
      a.release();
    }
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect((await request(UP)).status).toBe(200);
  }, 90_000);

  it("max_connections is the upstream's across its instances: 2 over two instances is one connection each, the rest wait", async () => {
    reset();
    await applyDefaults(
      'limits: { max_connections: 2 }\n',
      (u) => u.settings?.limits?.maxConnections === 2 && u.connectionsPerEndpoint === 1,
    );
    for (const a of apps) a.mode = 'hold';
    // Eight at once, on connections of their own to web's sidecar: with one mesh connection per
    // instance (no pipelining) only two can reach the apps; the others wait for a connection
    // (max_pending_requests, 1,024, is not reached). A limit per pool would let four through.
    const replies = Array.from({ length: 8 }, () => requestFresh(UP));
    await eventually(async () => apps[0]!.seen + apps[1]!.seen >= 2 || undefined, { what: 'two requests held' });
    // While they are held, nothing more gets through: the next ones wait for a connection.
    await new Promise((r) => setTimeout(r, 500));
    expect([apps[0]!.seen, apps[1]!.seen]).toEqual([1, 1]);
    for (const a of apps) {
      a.mode = 'ok';
      a.release();
    }
    expect((await Promise.all(replies)).map((r) => r.status)).toEqual(Array(8).fill(200));
  }, 90_000);

  it('a black-holed endpoint (its sidecar accepts and never answers) costs one connect timeout, then failover', async () => {
    reset();
    await applyDefaults('connect_timeout: 1s\n', (u) => u.settings?.connectTimeoutMs === 1000);
    // api-2's sidecar stopped (SIGSTOP): the kernel still accepts its connections, nobody answers TLS.
    const api2 = mesh.agents.find((a) => a.name === 'api-2')!;
    const pid = (await agentProxies(api2.socket))[0]!.info.pid;
    const before = (await upstream()).endpoints as Record<string, { connectFailures: Record<string, number> }>;
    const timeoutsBefore = Object.values(before).reduce((n, e) => n + (e.connectFailures['connect-timeout'] ?? 0), 0);
    process.kill(pid, 'SIGSTOP');
    let replies: Reply[];
    try {
      // The new connect timeout gave web's sidecar new pools, so every pick of api-2 dials it.
      replies = [];
      for (let i = 0; i < 8; i++) replies.push(await requestFresh(UP));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Every request answered by api-1: the ones that picked api-2 first paid one connect timeout, then failed over.
    expect(replies.map((r) => [r.status, r.body])).toEqual(Array(8).fill([200, 'api-1']));
    const after = (await upstream()).endpoints as Record<string, { connectFailures: Record<string, number> }>;
    const timeouts = Object.values(after).reduce((n, e) => n + (e.connectFailures['connect-timeout'] ?? 0), 0);
    // At most one connect timeout per request, and after 5 in a row (max_failures) api-2 is ejected: no more.
    expect(timeouts - timeoutsBefore).toBeGreaterThanOrEqual(1);
    expect(timeouts - timeoutsBefore).toBeLessThanOrEqual(5);
    const api2Endpoint = Object.entries(after).find(([id]) => id.endsWith('api-2'))![1] as unknown as {
      ejected: boolean;
    };
    if (timeouts - timeoutsBefore === 5) expect(api2Endpoint.ejected).toBe(true);
  }, 90_000);
});
