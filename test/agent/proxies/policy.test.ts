import { describe, expect, it } from 'vitest';
import { configEntrySchema, type ConfigEntry } from '../../../src/api/config-entries.js';
import type { InstanceView } from '../../../src/api/schemas.js';
import { compilePolicy, indexEntries, policyServices } from '../../../src/agent/proxies/policy.js';
import { parseSnapshot, type SnapshotPolicy } from '../../../src/proxy/snapshot.js';
import { snapshot } from '../../proxy/harness.js';
import { makePki, type Leaf, type Pki } from '../../proxy/pki.js';
import { beforeAll } from 'vitest';

let pki: Pki;
let leaf: Leaf;
beforeAll(async () => {
  pki = await makePki();
  leaf = await pki.leaf('web');
});

const entries = (...raw: unknown[]) => indexEntries(raw.map((r) => configEntrySchema.parse(r) as ConfigEntry));

function inst(
  service: string,
  id: string,
  meta: Record<string, string>,
  extra: Partial<InstanceView> = {},
): InstanceView {
  return {
    id,
    name: service,
    node: `n-${id}`,
    address: '127.0.0.1',
    port: 8080,
    meshPort: 21000,
    tags: [],
    meta,
    weight: 1,
    protocol: 'http',
    upstreams: [],
    checks: [],
    proxy: true,
    checkStates: {},
    registeredAt: '',
    updatedAt: '',
    nodeAlive: true,
    status: 'passing',
    ...extra,
  };
}

const instances: Record<string, InstanceView[]> = {
  api: [
    inst('api', 'a1', { version: 'v1' }),
    inst('api', 'a2', { version: 'v1' }, { status: 'warning' }),
    inst('api', 'a3', { version: 'v2' }, { tags: ['canary'] }),
    inst('api', 'a4', { version: 'v2' }, { status: 'critical' }),
  ],
  beta: [inst('beta', 'b1', {})],
};

const compile = (idx: ReturnType<typeof entries>, upstream = 'api') =>
  compilePolicy({
    upstream,
    registrationLb: 'round_robin',
    entries: idx,
    instancesOf: (s) => instances[s],
    endpointId: (x) => `${x.id}.${x.node}`,
  });

const resolver = {
  kind: 'service-resolver',
  name: 'api',
  default_subset: 'v1',
  subsets: {
    v1: { filter: 'Service.Meta.version == v1' },
    v2: { filter: 'Service.Meta.version == v2', only_passing: true },
  },
};

describe('compiling config entries into an upstream policy', () => {
  it('gives no policy without entries for the upstream (today behaviour)', () => {
    expect(compile(entries({ kind: 'service-defaults', name: 'api', protocol: 'http' }))).toBeUndefined();
    expect(compile(entries(resolver), 'beta')).toBeUndefined();
  });

  it('flattens router -> splitter -> resolver into routes of weighted targets with filtered endpoints', () => {
    const p = compile(
      entries(
        resolver,
        {
          kind: 'service-splitter',
          name: 'api',
          splits: [
            { weight: 90, service_subset: 'v1' },
            { weight: 10, service_subset: 'v2', request_headers: { set: { 'x-v': '2' } } },
          ],
        },
        {
          kind: 'service-router',
          name: 'api',
          routes: [
            { match: { http: { header: [{ name: 'X-Canary', exact: '1' }] } }, destination: { service_subset: 'v2' } },
            { match: { http: { path_prefix: '/v2/' } }, destination: { service_subset: 'v2', prefix_rewrite: '/' } },
            { match: { http: { path_prefix: '/beta' } }, destination: { service: 'beta' } },
          ],
        },
      ),
    )!;
    expect(p.routes.map((r) => r.name)).toEqual([
      'route 1 of service-router api',
      'route 2 of service-router api',
      'route 3 of service-router api',
      'service-splitter api',
    ]);
    expect(p.routes[0]).toEqual({
      name: 'route 1 of service-router api',
      match: { headers: [{ name: 'x-canary', exact: '1' }] },
      splits: [{ weight: 100, target: 'api/v2' }],
    });
    expect(p.routes[1]!.prefixRewrite).toBe('/');
    expect(p.routes[2]!.splits).toEqual([{ weight: 100, target: 'beta' }]);
    expect(p.routes[3]!.splits).toEqual([
      { weight: 90, target: 'api/v1' },
      { weight: 10, target: 'api/v2', requestHeaders: { set: { 'x-v': '2' } } },
    ]);
    const eps = Object.fromEntries(p.targets.map((t) => [t.name, t.endpoints.map((e) => e.id.split('.')[0])]));
    // v1 keeps the warning instance; v2 is only_passing and never has the critical one.
    expect(eps).toEqual({ 'api/v2': ['a3'], beta: ['b1'], 'api/v1': ['a1', 'a2'] });
    expect(
      policyServices(
        'api',
        entries(resolver, { kind: 'service-router', name: 'api', routes: [{ destination: { service: 'beta' } }] }),
      ),
    ).toEqual(['api', 'beta']);
  });

  it('multiplies nested splitter weights and takes each target balancer from subset, resolver, defaults, registration', () => {
    const p = compile(
      entries(
        {
          ...resolver,
          load_balancer: { policy: 'least_request' },
          subsets: {
            ...resolver.subsets,
            v2: {
              filter: 'Service.Tags contains canary',
              load_balancer: { policy: 'ring_hash', hash_policies: [{ field: 'cookie', field_value: 'session' }] },
            },
          },
        },
        {
          kind: 'service-splitter',
          name: 'api',
          splits: [
            { weight: 50, service_subset: 'v1' },
            { weight: 50, service: 'beta' },
          ],
        },
        {
          kind: 'service-splitter',
          name: 'beta',
          splits: [
            { weight: 20, service: 'beta' },
            { weight: 80, service: 'api', service_subset: 'v2' },
          ],
        },
        { kind: 'service-defaults', name: 'beta', load_balancer: { policy: 'random' } },
      ),
    )!;
    expect(p.routes).toHaveLength(1);
    expect(p.routes[0]!.splits).toEqual([
      { weight: 50, target: 'api/v1' },
      { weight: 10, target: 'beta' },
      { weight: 40, target: 'api/v2' },
    ]);
    const lb = Object.fromEntries(p.targets.map((t) => [t.name, t.loadBalancer]));
    expect(lb).toEqual({
      'api/v1': { policy: 'least_request' },
      beta: { policy: 'random' },
      'api/v2': { policy: 'ring_hash', hashPolicies: [{ field: 'cookie', fieldValue: 'session' }] },
    });
  });

  it('makes snapshots the proxy accepts, and the proxy refuses a split to a target it does not have', () => {
    const p = compile(
      entries(resolver, {
        kind: 'service-splitter',
        name: 'api',
        sticky: true,
        splits: [{ weight: 100, service_subset: 'v1' }],
      }),
    )!;
    expect(p.routes[0]!.stickyHash).toEqual([{ sourceIp: true }]);
    expect(() => parseSnapshotWith(p)).not.toThrow();
    const bad = { ...p, routes: [{ ...p.routes[0]!, splits: [{ weight: 100, target: 'api/v9' }] }] };
    expect(() => parseSnapshotWith(bad)).toThrow(
      /upstreams\.0\.policy\.routes\.0\.splits\.0: target "api\/v9" is not in policy\.targets/,
    );
  });
});

function parseSnapshotWith(policy: unknown): void {
  const snap = snapshot({
    pki,
    leaf,
    service: 'web',
    appPort: 9000,
    upstreams: [{ service: 'api', localPort: 18000, endpoints: [{ id: 'a1', port: 21000 }] }],
  });
  (snap.upstreams[0] as { policy?: unknown }).policy = policy as SnapshotPolicy;
  parseSnapshot(snap);
}
