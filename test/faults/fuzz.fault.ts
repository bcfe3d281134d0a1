/**
 * API fuzzing with fast-check: random methods, paths, queries, headers and bodies against the
 * registry (HTTPS) and the agent's socket. No answer may be a 5xx, neither process may die,
 * and a request that is refused (4xx) must change nothing (the registry's revision, the
 * agent's services).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { HOSTS } from '../helpers/hosts.js';
import { startMesh, type TestMesh } from '../helpers/mesh.js';
import { stopAllDaemons } from '../helpers/cli.js';
import { recordAndCheck } from './record.js';

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}
interface Ans {
  status: number;
  error?: string;
}

const segment = fc.oneof(
  fc.constantFrom('api', 'web', 'host-a', 'x', '*', '..', '%2e%2e', '__proto__', 'constructor', '', 'a'.repeat(300)),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?index=abc',
    '?index=1&wait=-1s',
    '?index=99999999999999999999',
    '?wait=1ms&index=0',
    '?healthy=maybe',
    '?__proto__=1',
  ),
  fc
    .dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 12 }), { maxKeys: 3 })
    .map((d) => `?${new URLSearchParams(d).toString()}`),
);
const nearValid = fc.oneof(
  fc.record({ node: segment, service: fc.record({ name: segment, port: fc.integer({ min: -5, max: 70_000 }) }) }),
  fc.record({ source: segment, destination: segment, action: fc.constantFrom('allow', 'deny', 'maybe', '') }),
  fc.record({
    name: segment,
    port: fc.oneof(fc.integer(), fc.string()),
    checks: fc.array(fc.object(), { maxLength: 3 }),
  }),
  fc.record({ status: fc.constantFrom('passing', 'critical', 'nope'), note: fc.string() }),
  fc.record({ ttlSeconds: fc.oneof(fc.integer(), fc.double(), fc.string()) }),
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.json(),
  nearValid.map((v) => JSON.stringify(v)),
  fc.constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '[', '{}', 'null', '""'),
  fc.string({ maxLength: 200 }),
);
const contentType = fc.constantFrom(
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  '',
);

function arbRequest(templates: string[], methods: string[]): fc.Arbitrary<Req> {
  return fc
    .record({
      method: fc.constantFrom(...methods),
      template: fc.constantFrom(...templates),
      segs: fc.array(segment, { minLength: 4, maxLength: 4 }),
      query,
      body,
      contentType,
      extra: fc.dictionary(
        fc.constantFrom('x-forwarded-for', 'accept', 'x-mesh-index', 'connection-x'),
        fc.string({ maxLength: 40 }),
        {
          maxKeys: 2,
        },
      ),
    })
    .map(({ method, template, segs, query: q, body: b, contentType: ct, extra }) => {
      let i = 0;
      const path = template.replace(/:[a-z]+/g, () => segs[i++ % segs.length] || 'x') + q;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(extra)) headers[k] = v.replace(/[^\x20-\x7e]/g, '');
      if (b !== undefined && ct) headers['content-type'] = ct;
      // Framed, so the body is the body whatever the method (Node sends GET/DELETE bodies unframed).
      if (b !== undefined) headers['content-length'] = String(Buffer.byteLength(b));
      return { method, path, headers, body: b };
    });
}

function send(o: http.RequestOptions & { body?: string | undefined }, mod: typeof http | typeof https): Promise<Ans> {
  return new Promise((resolve) => {
    const req = mod.request({ ...o, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
    req.end(o.body);
  });
}

describe('API fuzzing', () => {
  let mesh: TestMesh;
  let ca = '';
  let token = '';
  beforeAll(async () => {
    mesh = await startMesh({ agents: [{ name: 'f-fuzz', address: HOSTS.faults[0] }] });
    ca = await readFile(mesh.env.MESHCTL_CA_FILE!, 'utf8');
    token = mesh.env.MESHCTL_TOKEN!;
  });
  afterAll(async () => {
    await stopAllDaemons();
    await mesh?.close();
  });

  const registry = (r: Req, auth: 'admin' | 'none') =>
    send(
      {
        host: '127.0.0.1',
        port: mesh.registryPort,
        method: r.method,
        path: r.path,
        ca,
        headers: { ...r.headers, ...(auth === 'admin' ? { authorization: `Bearer ${token}` } : {}) },
        body: r.body,
      } as https.RequestOptions & { body?: string },
      https,
    );
  /** The store's revision: any change anywhere moves it. */
  const revision = () =>
    new Promise<number>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: mesh.registryPort,
            path: '/v1/status',
            ca,
            agent: false,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            let s = '';
            res.on('data', (d: Buffer) => (s += d.toString()));
            res.on('end', () => resolve((JSON.parse(s) as { revision: number }).revision));
          },
        )
        .on('error', reject);
    });

  it('the registry: no 5xx, no crash, no state change from a refused request', async () => {
    const templates = [
      '/v1/catalog/register',
      '/v1/catalog/services',
      '/v1/catalog/service/:name',
      '/v1/catalog/instances',
      '/v1/catalog/node/:node',
      '/v1/catalog/node/:node/service/:id',
      '/v1/health/node/:node/service/:id/check/:check',
      '/v1/intentions',
      '/v1/intentions/:source/:destination',
      '/v1/intentions/check',
      '/v1/nodes/:node',
      '/v1/nodes/:node/alive',
      '/v1/nodes/:node/certificate',
      '/v1/nodes/:node/authorization',
      '/v1/metrics/node/:node',
      '/v1/ca/sign',
      '/v1/join',
      '/v1/watch',
      '/v1/status',
      '/:x/:y',
    ];
    let sent = 0;
    const fiveXx: string[] = [];
    const changed: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        arbRequest(templates, ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']),
        fc.constantFrom('admin', 'none'),
        async (r, auth) => {
          const before = await revision();
          const a = await registry(r, auth as 'admin' | 'none');
          sent += 1;
          if (a.status >= 500 || a.status === 0) fiveXx.push(`${a.status} ${r.method} ${r.path} ${a.error ?? ''}`);
          if (a.status >= 400 && (await revision()) !== before) changed.push(`${a.status} ${r.method} ${r.path}`);
          return true;
        },
      ),
      { numRuns: 300, seed: 11 },
    );
    const alive =
      (await registry({ method: 'GET', path: '/v1/health', headers: {}, body: undefined }, 'none')).status === 200;
    recordAndCheck(
      {
        scenario: 'API fuzzing: registry',
        load: `${sent} random requests (fast-check, seed 11)`,
        fault: 'random methods, paths, queries, headers, bodies; admin token or none',
        sent,
        failed: fiveXx.length + changed.length + (alive ? 0 : 1),
        lostWrites: '—',
        expected: 'no 5xx, alive, refused requests change nothing',
      },
      fiveXx.length === 0 && changed.length === 0 && alive,
      [...fiveXx.slice(0, 3), ...changed.slice(0, 3)].join('; '),
    );
  });

  it("the agent's socket: no 5xx, no crash, no state change from a refused request", async () => {
    const a = mesh.agents[0]!;
    const templates = [
      '/v1/agent/self',
      '/v1/agent/services',
      '/v1/agent/services/:id',
      '/v1/agent/checks/:id',
      '/v1/agent/registry/:x',
      '/v1/agent/registry/catalog/:x',
      '/v1/agent/proxies',
      '/v1/agent/:x',
      '/:x/:y',
    ];
    const services = async () =>
      new Promise<string>((resolve) => {
        http
          .get({ socketPath: a.socket, path: '/v1/agent/services' }, (res) => {
            let s = '';
            res.on('data', (d: Buffer) => (s += d.toString()));
            res.on('end', () => resolve(s.replace(/"(lastRunAt|statusSince|output)":"[^"]*"/g, '')));
          })
          .on('error', () => resolve('unreachable'));
      });
    let sent = 0;
    const fiveXx: string[] = [];
    const changed: string[] = [];
    await fc.assert(
      fc.asyncProperty(arbRequest(templates, ['GET', 'PUT', 'POST', 'DELETE']), async (r) => {
        const before = await services();
        const ans = await send(
          { socketPath: a.socket, method: r.method, path: r.path, headers: r.headers, body: r.body },
          http,
        );
        sent += 1;
        if (ans.status >= 500 || ans.status === 0)
          fiveXx.push(`${ans.status} ${r.method} ${r.path} ${ans.error ?? ''}`);
        if (ans.status >= 400 && (await services()) !== before) changed.push(`${ans.status} ${r.method} ${r.path}`);
        return true;
      }),
      { numRuns: 200, seed: 11 },
    );
    const alive = a.daemon?.proc.exitCode === null;
    recordAndCheck(
      {
        scenario: 'API fuzzing: agent socket',
        load: `${sent} random requests (fast-check, seed 11)`,
        fault: 'random methods, paths, queries, headers, bodies (leave excluded: it stops the agent by design)',
        sent,
        failed: fiveXx.length + changed.length + (alive ? 0 : 1),
        lostWrites: '—',
        expected: 'no 5xx, alive, refused requests change nothing',
      },
      fiveXx.length === 0 && changed.length === 0 && alive,
      [...fiveXx.slice(0, 3), ...changed.slice(0, 3)].join('; '),
    );
  });
});
