import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import type { ConfigEntry } from '../../src/api/config-entries.js';
import { serviceDetail } from '../../src/ui/model.js';
import { policyDetail } from '../../src/ui/policy.js';
import { ServiceDetail } from '../../src/ui/views/ServiceDetail.js';
import { demoSnapshot } from './fixtures.js';

/** The example: resolver v1/v2 on a cookie ring hash, a 90/10 splitter, a router with a header and a prefix route. */
const entries: ConfigEntry[] = [
  {
    kind: 'service-resolver',
    name: 'api',
    default_subset: 'v1',
    subsets: { v1: { filter: 'Service.Meta.version == v1' }, v2: { filter: 'Service.Meta.version == v2' } },
    load_balancer: { policy: 'ring_hash', hash_policies: [{ field: 'cookie', field_value: 'session' }] },
  },
  {
    kind: 'service-splitter',
    name: 'api',
    splits: [
      { weight: 90, service_subset: 'v1' },
      { weight: 10, service_subset: 'v2' },
    ],
  },
  {
    kind: 'service-router',
    name: 'api',
    routes: [
      { match: { http: { header: [{ name: 'x-canary', exact: '1' }] } }, destination: { service_subset: 'v2' } },
      {
        match: { http: { path_prefix: '/v2/', methods: ['GET'] } },
        destination: { service_subset: 'v2', prefix_rewrite: '/' },
      },
    ],
  },
] as ConfigEntry[];

function snapshot() {
  const s = demoSnapshot({ config: entries });
  const api = s.metrics!.services.find((m) => m.name === 'api')!;
  api.subsets = [
    { subset: 'api/v1', rps: 88, successRate: 1, p50Ms: 2, p99Ms: 9, requests: 880, failed: 0 },
    { subset: 'api/v2', rps: 12, successRate: 0.75, p50Ms: 3, p99Ms: 40, requests: 120, failed: 30 },
  ];
  return s;
}

describe('the service detail shows its traffic policy', () => {
  it('routes as match → destination, splits with configured and live weights, subsets with figures', () => {
    const p = policyDetail(
      entries,
      'api',
      snapshot().metrics!.services.find((m) => m.name === 'api'),
    )!;
    expect(p.routes).toEqual([
      { number: 1, match: 'header x-canary = 1', destination: 'v2' },
      { number: 2, match: 'path /v2/*, GET', destination: 'v2, rewrite to /' },
    ]);
    expect(p.splits).toEqual([
      { target: 'v1', weight: 90, livePercent: 88 },
      { target: 'v2', weight: 10, livePercent: 12 },
    ]);
    expect(p.subsets.map((s) => [s.name, s.isDefault, s.requests, s.successRate])).toEqual([
      ['v1', true, 880, 1],
      ['v2', false, 120, 0.75],
    ]);
    expect(p.loadBalancer).toBe('ring_hash (cookie session)');
  });

  it('no router, splitter or resolver: no policy section, and no figures yet: dashes', () => {
    expect(serviceDetail(demoSnapshot(), 'api')!.policy).toBeNull();
    const p = policyDetail(entries, 'api', undefined)!;
    expect(p.splits.map((s) => s.livePercent)).toEqual([null, null]);
    expect(p.subsets.map((s) => s.rps)).toEqual([null, null]);
  });

  it('draws it between the instances and the upstreams', () => {
    const r = render(<ServiceDetail name="api" detail={serviceDetail(snapshot(), 'api')} maxLines={40} width={100} />);
    const f = stripVTControlCharacters(r.lastFrame() ?? '');
    r.unmount();
    expect(f).toContain('TRAFFIC POLICY  balancer ring_hash (cookie session)');
    expect(f).toMatch(/1\s+header x-canary = 1\s+→ v2/);
    expect(f).toMatch(/2\s+path \/v2\/\*, GET\s+→ v2, rewrite to \//);
    expect(f).toContain('SPLIT  v1 90% (live 88%)   v2 10% (live 12%)');
    expect(f).toMatch(/v1 \(default\)\s+Service\.Meta\.version == v1\s+88\s+100%\s+9\.0ms\s+880/);
    expect(f).toMatch(/v2\s+Service\.Meta\.version == v2\s+12\s+75\.0%\s+40ms\s+120/);
    expect(f.indexOf('TRAFFIC POLICY')).toBeGreaterThan(f.indexOf('INSTANCES'));
    expect(f.indexOf('TRAFFIC POLICY')).toBeLessThan(f.indexOf('UPSTREAMS'));
  });
});
