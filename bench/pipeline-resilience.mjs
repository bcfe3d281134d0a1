/**
 * The outbound L7 pipeline alone, in process: CPU time per request of `runPipeline` through an
 * UpstreamPolicy, with a send that answers 200 at once (no sockets), for the default resilience
 * with and without a route of its own settings and for resilience off. NOOP_TIMER=1 replaces the
 * request timer by a no-op, to see what it costs. docs/BENCHMARKS.md "Run 4". The last case is
 * meshctl-l7-policy-pair's traffic policy (50 routes, 10 of them regexes, then a 90/10 split):
 * what routing and splitting add to the pipeline (issue 14).
 *
 *   npm run build && node bench/pipeline-resilience.mjs [DIST]   (DIST: a build, ./dist by default)
 */
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = pathToFileURL(resolve(process.argv[2] ?? fileURLToPath(new URL('../dist', import.meta.url)))).href;
const { runPipeline } = await import(`${dist}/proxy/outbound/http/pipeline.js`);
const { UpstreamPolicy } = await import(`${dist}/proxy/outbound/http/policy.js`);
const { AttemptSignal } = await import(`${dist}/proxy/outbound/http/client.js`);
const { RevokedServers } = await import(`${dist}/proxy/outbound/revoked-servers.js`);
const { benchPolicy } = await import('./lib/scenarios.mjs');
const tls = { secureContext: createSecureContext(), trustDomain: 'test.mesh', revoked: new RevokedServers() };
const settings = { connectTimeoutMs: 1000, idleTimeoutMs: 1000, random: Math.random };
const ep = { id: 'api-1.n1', node: 'n1', address: '127.0.0.1', port: 1001, weight: 1 };
const OFF = { requestTimeoutMs: 0, perTryTimeoutMs: 0, retry: { numRetries: 0 }, outlier: { consecutiveErrors: 0 } };
function upstream(routeRes, upRes) {
  return {
    service: 'api',
    protocol: 'http',
    localAddress: '127.0.0.1',
    localPort: 0,
    loadBalancer: 'round_robin',
    endpoints: [ep],
    ...(upRes ? { resilience: upRes } : {}),
    policy: {
      routes: [{ name: 'r', splits: [{ weight: 1, target: 'api' }], ...(routeRes ? { resilience: routeRes } : {}) }],
      targets: [{ name: 'api', service: 'api', loadBalancer: { policy: 'round_robin' }, endpoints: [ep] }],
    },
  };
}
const body = { discard() {} };
const ok = { kind: 'response', status: 200, headers: {}, body };
const timer = process.env.NOOP_TIMER
  ? () => () => {}
  : (ms, f) => {
      const t = setTimeout(f, ms);
      return () => clearTimeout(t);
    };
function deps() {
  return {
    send: () => Promise.resolve(ok),
    random: Math.random,
    now: () => performance.now(),
    started: (a) => {
      a.endpoint.inFlight += 1;
    },
    abandoned: () => {},
    timer,
  };
}
async function measure(p, n) {
  const d = deps();
  const req = { method: 'GET', path: '/', headers: {} };
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const sig = new AttemptSignal();
    const r = await runPipeline({ request: req, body: undefined, routes: p.table, signal: sig }, d);
    sig.clearDeadline();
    r.attempt.endpoint.inFlight -= 1;
    r.target.cluster.breaker.endRequest?.();
  }
  const u = process.cpuUsage(t0);
  return ((u.user + u.system) * 1000) / n;
}
const cases = {
  'default resilience, route without settings': upstream(undefined, undefined),
  'default resilience, route with its own timeout+retry': upstream(
    { requestTimeoutMs: 5000, retry: { numRetries: 2, retryOn: ['5xx'] } },
    undefined,
  ),
  'resilience off, route without settings': upstream(undefined, OFF),
  // meshctl-l7-policy-pair's policy (issue 14): GET / walks past its 50 routes to the 90/10 split.
  'default resilience, the bench 50 routes + 90/10 split': {
    ...upstream(undefined, undefined),
    policy: benchPolicy({ host: ep.address, port: ep.port }),
  },
};
const N = 200_000;
const out = {};
for (let round = 0; round < 5; round++)
  for (const [k, u] of Object.entries(cases)) {
    const p = new UpstreamPolicy(u, tls, settings);
    (out[k] ??= []).push(await measure(p, N));
  }
for (const [k, v] of Object.entries(out)) {
  v.sort((a, b) => a - b);
  console.log(`${k.padEnd(55)} median ${v[2].toFixed(0)} ns/req  (${v.map((x) => x.toFixed(0)).join(' ')})`);
}
