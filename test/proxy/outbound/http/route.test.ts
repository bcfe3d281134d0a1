import { describe, expect, it } from 'vitest';
import { defaultRoutes, route, type Route } from '../../../../src/proxy/outbound/http/route.js';
import { cluster } from './fixtures.js';

const req = (path: string, method = 'GET') => ({ method, path, headers: {} });

describe('route stage', () => {
  it('the default table sends every request to the upstream, balanced by its policy', () => {
    const c = cluster('api', [{ id: 'a' }]);
    const table = defaultRoutes(c);
    const r = route(table, req('/anything?x=1', 'DELETE'));
    expect(r?.name).toBe('default');
    expect(r?.splits).toEqual([{ weight: 1, cluster: c, balancer: c.balancer }]);
  });

  it('takes the first route that matches, and none when none does', () => {
    const c = cluster('api', [{ id: 'a' }]);
    const splits = [{ weight: 1, cluster: c, balancer: c.balancer }];
    const routes: Route[] = [
      { name: 'admin', matches: (r) => r.path.startsWith('/admin'), splits },
      { name: 'v2', matches: (r) => r.path.startsWith('/v2'), splits },
      { name: 'v2-too', matches: (r) => r.path.startsWith('/v2'), splits },
    ];
    expect(route({ routes }, req('/v2/x'))?.name).toBe('v2');
    expect(route({ routes }, req('/admin'))?.name).toBe('admin');
    expect(route({ routes }, req('/other'))).toBeUndefined();
  });
});
