/**
 * The systems under test, all on loopback, all kept running for the whole data-plane run:
 *
 *   direct              load → upstream 127.0.0.1:U
 *   haproxy-pair        load → haproxy (tcp) 127.0.0.2 ─mTLS→ haproxy (tcp) 127.0.0.3 → upstream
 *   haproxy-http-pair   the same with both haproxies in http mode (keep-alive, connection reuse)
 *   meshctl-l4-pair     load → web proxy (tcp upstream api) 127.0.0.2 ─mTLS→ api proxy 127.0.0.3 → upstream
 *   meshctl-l7-pair     the same with protocol http (the default resilience: 15 s request timeout,
 *                       retries, budget, circuit limits, outlier ejection)
 *   meshctl-l7-pair-resilience-off
 *                       (opt-in) the same pair with every resilience feature off (no request
 *                       timeout, no retries, outlier ejection off, limits out of reach): what
 *                       the defaults cost, side by side
 *   meshctl-l7-policy-pair  the L7 pair with a traffic policy on web's upstream: 50 routes (10 of
 *                       them regexes) that the bench's GET / walks past, then a 90/10 split over two
 *                       subsets (both the one api endpoint): the cost of policy, next to the pair without
 *   node-http-proxy     (opt-in) load → bench/ref-proxy.mjs → upstream: one plain http-proxy hop, the
 *                       floor of the library the L7 proxy is built on
 *   node-undici         (opt-in) load → bench/ref-undici.mjs → upstream: the same hop with undici's
 *                       pool as the client, the candidate to replace it
 *
 * "Hosts" are loopback addresses: web on 127.0.0.2, api on 127.0.0.3. Every mTLS hop uses
 * EC P-256 leaves from the same registry CA, TLS 1.3 only, and verifies the peer both ways.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'node:http';
import { CLI_ENTRY, distImport, REPO } from './dist.mjs';
import { meshMaterial } from './mesh.mjs';
import { freePort, startProcess, stopProcess, waitForPort } from './procs.mjs';

/** Scenarios with a `-close` variant (wrk sends Connection: close; no fixed-rate run). */
export const CLOSE_SCENARIOS = ['haproxy-pair', 'meshctl-l4-pair'];

export const WEB_HOST = '127.0.0.2';
export const API_HOST = '127.0.0.3';
export const UPSTREAM_HOST = '127.0.0.1';
/** The opt-in one-hop references (no TLS, no mesh): scenario, script under bench/, client library. */
const REFERENCE_HOPS = [
  ['node-http-proxy', 'ref-proxy.mjs', 'http-proxy'],
  ['node-undici', 'ref-undici.mjs', 'undici Pool'],
];

/**
 * @typedef {{ pid: number, role: string }} Hop
 * @typedef {{ name: string, kind: 'direct' | 'haproxy' | 'meshctl' | 'reference', url: string, hops: Hop[], note: string }} Scenario
 */

/** The haproxy configuration for one side of the pair. */
export function haproxyConfig({ mode, side, listen, target, crtFile, caFile }) {
  const global = [
    'global',
    // One thread, like one Node proxy process: the comparison is per process, per hop.
    '    nbthread 1',
    '    maxconn 4096',
    '    ssl-default-bind-options ssl-min-ver TLSv1.3',
    '    ssl-default-server-options ssl-min-ver TLSv1.3',
    '',
    'defaults',
    `    mode ${mode}`,
    '    timeout connect 5s',
    '    timeout client 65s',
    '    timeout server 65s',
    ...(mode === 'http' ? ['    timeout http-keep-alive 65s', '    option http-keep-alive'] : []),
    '',
  ];
  if (side === 'outbound') {
    return [
      ...global,
      'frontend outbound',
      `    bind ${listen.host}:${listen.port}`,
      '    default_backend api',
      '',
      'backend api',
      ...(mode === 'http' ? ['    http-reuse always'] : []),
      // verify required: the server's chain must lead to the mesh root; crt: our client leaf.
      `    server api-1 ${target.host}:${target.port} ssl verify required ca-file ${caFile} crt ${crtFile}`,
      '',
    ].join('\n');
  }
  return [
    ...global,
    'frontend inbound',
    // verify required: a client certificate from the mesh root is mandatory.
    `    bind ${listen.host}:${listen.port} ssl crt ${crtFile} ca-file ${caFile} verify required`,
    '    default_backend app',
    '',
    'backend app',
    ...(mode === 'http' ? ['    http-reuse always'] : []),
    `    server app ${target.host}:${target.port}`,
    '',
  ].join('\n');
}

/** A meshctl proxy snapshot, in the schema of src/proxy/snapshot.ts. */
/** The upstream settings of the resilience-off pair: nothing armed, nothing counted against a limit. */
const RESILIENCE_OFF = {
  requestTimeoutMs: 0,
  perTryTimeoutMs: 0,
  retry: { numRetries: 0 },
  limits: {
    maxConnections: 1_000_000,
    maxPendingRequests: 1_000_000,
    maxConcurrentRequests: 1_000_000,
    maxConcurrentRetries: 1_000_000,
  },
  outlier: { consecutiveErrors: 0 },
};

export function proxySnapshot({
  mesh,
  service,
  id,
  protocol,
  inbound,
  appPort,
  upstream,
  resilienceOff = false,
  policy,
}) {
  const leaf = service === 'web' ? mesh.web : mesh.api;
  return {
    version: 1,
    trustDomain: mesh.trustDomain,
    service: { name: service, id, protocol, inbound, app: { address: UPSTREAM_HOST, port: appPort } },
    tls: { certPem: leaf.certPem, keyPem: leaf.keyPem, rootsPem: leaf.rootsPem },
    defaultIntention: mesh.defaultIntention,
    intentions: mesh.intentions,
    upstreams: upstream
      ? [
          {
            service: 'api',
            protocol,
            localAddress: upstream.local.host,
            localPort: upstream.local.port,
            loadBalancer: 'round_robin',
            endpoints: [
              {
                id: 'api-1',
                node: 'bench-api',
                address: upstream.endpoint.host,
                port: upstream.endpoint.port,
                weight: 1,
              },
            ],
            ...(resilienceOff ? { resilience: RESILIENCE_OFF } : {}),
            ...(policy ? { policy } : {}),
          },
        ]
      : [],
  };
}

/**
 * The traffic policy of meshctl-l7-policy-pair, as the agent compiles it (src/agent/proxies/policy.ts):
 * 50 routes the bench's `GET /` matches none of — path regexes, headers, exact paths, prefixes
 * with a method — so every request is tested against all of them, then the splitter's catch-all
 * route, 90/10 over two subsets. Both subsets hold the one api endpoint: the figure is the cost
 * of routing and splitting, not of a second upstream.
 */
export function benchPolicy(endpoint) {
  const routes = [];
  for (let i = 0; i < 50; i++) {
    const match = [
      { pathRegex: `/api/v${i}/users/[0-9]+(/orders/[0-9]+)?` },
      { headers: [{ name: 'x-bench-route', exact: String(i) }] },
      { pathExact: `/exact/${i}` },
      { pathPrefix: `/prefix/${i}/`, methods: ['POST', 'PUT'] },
      { pathPrefix: `/p${i}/`, headers: [{ name: 'x-tenant', prefix: 'team-' }] },
    ][i % 5];
    routes.push({ name: `route ${i + 1} of service-router api`, match, splits: [{ weight: 100, target: 'api/v2' }] });
  }
  routes.push({
    name: 'service-splitter api',
    splits: [
      { weight: 90, target: 'api/v1' },
      { weight: 10, target: 'api/v2' },
    ],
  });
  const ep = { id: 'api-1', node: 'bench-api', address: endpoint.host, port: endpoint.port, weight: 1 };
  const target = (subset) => ({
    name: `api/${subset}`,
    service: 'api',
    subset,
    loadBalancer: { policy: 'round_robin' },
    endpoints: [ep],
  });
  return { routes, targets: [target('v1'), target('v2')] };
}

/** One GET; resolves with status and body (to check a scenario works before measuring it). */
export function getOnce(url, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.once('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once('error', reject);
    req.end();
  });
}

/**
 * Starts the upstream, both haproxy pairs and both meshctl pairs.
 * @param {{ dir: string, names: string[], profileDir?: string, proxyNodeArgs?: string[], log: (s: string) => void }} o
 * @returns {Promise<{ scenarios: Scenario[], upstreamPid: number, stop: () => Promise<void> }>}
 */
export async function startScenarios(o) {
  const started = [];
  /** The node flags the agent launches a proxy with (src/proxy/process-flags.ts). */
  const { PROXY_NODE_FLAGS } = await distImport('proxy/process-flags.js');
  const stop = async () => {
    // meshctl proxies first: with --cpu-prof they write their profile on a clean exit.
    await Promise.all(started.map((p) => stopProcess(p, 5000)));
  };
  // A `-close` scenario runs on its base scenario's processes (see CLOSE_SCENARIOS below).
  const want = (n) => o.names.includes(n) || o.names.includes(`${n}-close`);
  try {
    const upstreamPort = await freePort(UPSTREAM_HOST);
    const upstream = startProcess(
      'upstream',
      process.execPath,
      [join(REPO, 'bench', 'upstream.mjs'), UPSTREAM_HOST, String(upstreamPort)],
      {
        logFile: join(o.dir, 'upstream.log'),
      },
    );
    started.push(upstream);
    await waitForPort(UPSTREAM_HOST, upstreamPort, 15_000, 'the upstream', upstream);

    /** @type {Scenario[]} */
    const scenarios = [];
    if (want('direct')) {
      scenarios.push({
        name: 'direct',
        kind: 'direct',
        url: `http://${UPSTREAM_HOST}:${upstreamPort}/`,
        hops: [],
        note: 'load generator → upstream',
      });
    }

    for (const [name, script, what] of REFERENCE_HOPS) {
      if (!want(name)) continue;
      const listen = { host: WEB_HOST, port: await freePort(WEB_HOST) };
      const p = startProcess(
        name,
        process.execPath,
        [join(REPO, 'bench', script), listen.host, String(listen.port), UPSTREAM_HOST, String(upstreamPort)],
        {
          logFile: join(o.dir, `${name}.log`),
        },
      );
      started.push(p);
      await waitForPort(listen.host, listen.port, 15_000, `the reference ${name}`, p);
      scenarios.push({
        name,
        kind: 'reference',
        url: `http://${listen.host}:${listen.port}/`,
        hops: [{ pid: p.pid, role: 'out' }],
        note: `one plain ${what} hop, no TLS (reference)`,
      });
    }

    const needMesh = o.names.some((n) => n !== 'direct' && !REFERENCE_HOPS.some(([ref]) => ref === n));
    const mesh = needMesh
      ? await meshMaterial(o.dir, {
          webAddress: WEB_HOST,
          apiAddress: API_HOST,
          apiPort: 18000,
          apiMeshPort: 21000,
          upstreamPort,
        })
      : undefined;

    if (mesh && (want('haproxy-pair') || want('haproxy-http-pair'))) {
      const caFile = join(o.dir, 'roots.pem');
      const webCrt = join(o.dir, 'web.pem');
      const apiCrt = join(o.dir, 'api.pem');
      await writeFile(caFile, mesh.web.rootsPem.join('\n'), { mode: 0o600 });
      await writeFile(webCrt, `${mesh.web.certPem.trimEnd()}\n${mesh.web.keyPem}`, { mode: 0o600 });
      await writeFile(apiCrt, `${mesh.api.certPem.trimEnd()}\n${mesh.api.keyPem}`, { mode: 0o600 });
      for (const [name, mode] of [
        ['haproxy-pair', 'tcp'],
        ['haproxy-http-pair', 'http'],
      ]) {
        if (!want(name)) continue;
        const out = { host: WEB_HOST, port: await freePort(WEB_HOST) };
        const inb = { host: API_HOST, port: await freePort(API_HOST) };
        const hops = [];
        for (const [side, listen, target, crtFile] of [
          ['inbound', inb, { host: UPSTREAM_HOST, port: upstreamPort }, apiCrt],
          ['outbound', out, inb, webCrt],
        ]) {
          const cfg = join(o.dir, `${name}-${side}.cfg`);
          await writeFile(cfg, haproxyConfig({ mode, side, listen, target, crtFile, caFile }));
          const p = startProcess(`${name} ${side}`, 'haproxy', ['-db', '-f', cfg], {
            logFile: join(o.dir, `${name}-${side}.log`),
          });
          started.push(p);
          await waitForPort(
            listen.host,
            listen.port,
            15_000,
            `haproxy ${name} ${side} (log: ${join(o.dir, `${name}-${side}.log`)})`,
            p,
          );
          hops.unshift({ pid: p.pid, role: side === 'outbound' ? 'out' : 'in' });
        }
        scenarios.push({
          name,
          kind: 'haproxy',
          url: `http://${out.host}:${out.port}/`,
          hops,
          note: `haproxy ${mode} mode, nbthread 1, mTLS verify required both ways`,
        });
      }
    }

    for (const [name, protocol, resilienceOff, withPolicy] of [
      ['meshctl-l4-pair', 'tcp', false, false],
      ['meshctl-l7-pair', 'http', false, false],
      ['meshctl-l7-pair-resilience-off', 'http', true, false],
      ['meshctl-l7-policy-pair', 'http', false, true],
    ]) {
      if (!mesh || !want(name)) continue;
      const local = { host: WEB_HOST, port: await freePort(WEB_HOST) };
      const endpoint = { host: API_HOST, port: await freePort(API_HOST) };
      const snapshots = {
        in: proxySnapshot({
          mesh,
          service: 'api',
          id: 'api-1',
          protocol,
          inbound: { address: API_HOST, port: endpoint.port },
          appPort: upstreamPort,
        }),
        out: proxySnapshot({
          mesh,
          service: 'web',
          id: 'web-1',
          protocol,
          inbound: { address: WEB_HOST, port: 0 },
          appPort: 1,
          upstream: { local, endpoint },
          resilienceOff,
          policy: withPolicy ? benchPolicy(endpoint) : undefined,
        }),
      };
      const hops = [];
      for (const role of ['in', 'out']) {
        const base = join(o.dir, `${name}-${role}`);
        await writeFile(`${base}.json`, JSON.stringify(snapshots[role]), { mode: 0o600 });
        // The agent's node flags first: --proxy-node-args after them may override one.
        const nodeArgs = [
          ...PROXY_NODE_FLAGS,
          ...(o.proxyNodeArgs ?? []),
          ...(o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, `${name}-${role}`)] : []),
        ];
        // Exactly what the agent runs (src/agent/proxies/process.ts), plus no drain on stop.
        const p = startProcess(
          `${name} ${role}`,
          process.execPath,
          [
            ...nodeArgs,
            CLI_ENTRY,
            'proxy',
            'run',
            '--admin-socket',
            `${base}.sock`,
            '--snapshot',
            `${base}.json`,
            '--drain-seconds',
            '0',
          ],
          { logFile: `${base}.log`, env: { ...process.env, MESHCTL_PROXY_SERVICE: role === 'in' ? 'api-1' : 'web-1' } },
        );
        started.push(p);
        const at = role === 'in' ? endpoint : local;
        await waitForPort(at.host, at.port, 20_000, `meshctl proxy ${name} ${role} (log: ${base}.log)`, p);
        hops.push({ pid: p.pid, role });
      }
      hops.reverse();
      scenarios.push({
        name,
        kind: 'meshctl',
        url: `http://${local.host}:${local.port}/`,
        hops,
        note: `meshctl proxy run, protocol ${protocol}, intention web→api allow${resilienceOff ? ', resilience off' : ''}${
          withPolicy ? '; 50 routes (10 regex) + a 90/10 split on the upstream' : ''
        }`,
      });
    }

    // Every path must answer 200 ok end to end before anything is measured.
    for (const s of scenarios) {
      const r = await getOnce(s.url).catch((e) => ({ status: 0, body: String(e), headers: {} }));
      if (r.status !== 200 || r.body !== 'ok\n') {
        throw new Error(
          `${s.name}: GET ${s.url} answered ${r.status} ${JSON.stringify(r.body.slice(0, 200))}; logs are in ${o.dir}`,
        );
      }
    }
    // Connection: close over an L4 pair: every request is a new client connection and so a new
    // mTLS connection between the proxies — the cost of a handshake per hop. (An L7 pair would
    // keep its pooled mesh connections, so it is not a handshake figure.)
    for (const base of CLOSE_SCENARIOS) {
      const b = scenarios.find((x) => x.name === base);
      if (!b || !o.names.includes(`${base}-close`)) continue;
      scenarios.push({
        ...b,
        name: `${base}-close`,
        close: true,
        note: `${b.note}; Connection: close, so a new mTLS connection per request`,
      });
    }
    // A base started only for its -close variant is not measured itself.
    for (let i = scenarios.length - 1; i >= 0; i--) {
      if (!o.names.includes(scenarios[i].name)) scenarios.splice(i, 1);
    }
    const order = [
      'direct',
      'haproxy-pair',
      'haproxy-http-pair',
      'meshctl-l4-pair',
      'meshctl-l7-pair',
      'meshctl-l7-pair-resilience-off',
      'meshctl-l7-policy-pair',
      'haproxy-pair-close',
      'meshctl-l4-pair-close',
      'node-http-proxy',
      'node-undici',
    ];
    scenarios.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    return { scenarios, upstreamPid: upstream.pid, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
