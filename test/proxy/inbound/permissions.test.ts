/**
 * L7 permissions on the inbound: the caller's intention decides each request by its first
 * matching permission, none matching means the mesh's default; a refused request gets 403 with
 * the permission named and the keep-alive connection goes on. Unit cases on PermissionRules,
 * then a real pair (web's outbound → api's inbound over mTLS).
 */
import { describe, expect, it } from 'vitest';
import { normalizeTarget, PermissionRules } from '../../../src/proxy/inbound/permissions.js';
import type { ProxySnapshot, ProxySnapshotInput } from '../../../src/proxy/snapshot.js';
import { get, keepAliveAgent, outboundPort } from '../harness.js';
import { webApiFixture, webApiPki } from '../web-api.js';

type Intentions = ProxySnapshotInput['intentions'];

/** web may GET under /api/ only; /admin is named; everything else is refused by permission 3. */
const WEB_GET_API: Intentions = [
  {
    source: 'web',
    destination: 'api',
    action: 'allow',
    permissions: [
      { action: 'deny', pathPrefix: '/admin' },
      { action: 'allow', pathPrefix: '/api/', methods: ['GET'] },
      { action: 'deny', pathPrefix: '/' },
    ],
  },
];

function rules(intentions: Intentions, defaultIntention: 'allow' | 'deny' = 'deny'): PermissionRules {
  return new PermissionRules({ service: { name: 'api' }, intentions, defaultIntention } as unknown as ProxySnapshot);
}

describe('permission rules', () => {
  it('the first matching permission decides, and a refusal names it', () => {
    const r = rules(WEB_GET_API);
    expect(r.check('web', 'GET', '/api/users?x=1', {})).toBeUndefined();
    expect(r.check('web', 'DELETE', '/api/users', {})).toEqual({
      kind: 'intention-deny',
      reason: 'intention-deny web -> api (permission 3: /)',
    });
    expect(r.check('web', 'GET', '/admin', {})?.reason).toBe('intention-deny web -> api (permission 1: /admin)');
    expect(r.check('web', 'GET', '/api', {})?.reason).toBe('intention-deny web -> api (permission 3: /)');
  });

  it('a request no permission matches gets the default intention', () => {
    const only: Intentions = [
      { source: 'web', destination: 'api', action: 'allow', permissions: [{ action: 'allow', methods: ['GET'] }] },
    ];
    expect(rules(only, 'deny').check('web', 'POST', '/', {})).toEqual({
      kind: 'default-deny',
      reason: 'default-deny web -> api (no permission matched)',
    });
    expect(rules(only, 'allow').check('web', 'POST', '/', {})).toBeUndefined();
  });

  it("uses the caller's most specific intention: an L4 intention for it lets every request through", () => {
    const both: Intentions = [
      { source: '*', destination: 'api', action: 'allow', permissions: [{ action: 'deny', methods: ['DELETE'] }] },
      { source: 'batch', destination: 'api', action: 'allow' },
    ];
    const r = rules(both);
    expect(r.check('batch', 'DELETE', '/x', {})).toBeUndefined();
    expect(r.check('web', 'DELETE', '/x', {})?.reason).toBe('intention-deny web -> api (permission 1: DELETE)');
    expect(r.check('web', 'GET', '/x', {})?.kind).toBe('default-deny');
  });

  it('matches headers as the permission says', () => {
    const r = rules([
      {
        source: 'web',
        destination: 'api',
        action: 'allow',
        permissions: [{ action: 'allow', headers: [{ name: 'x-role', exact: 'admin' }] }],
      },
    ]);
    expect(r.check('web', 'GET', '/', { 'x-role': 'admin' })).toBeUndefined();
    expect(r.check('web', 'GET', '/', { 'x-role': 'guest' })?.kind).toBe('default-deny');
  });
});

describe('request targets are normalized before they are decided', () => {
  it('resolves dot segments (also encoded), backslashes and repeated slashes; keeps the query', () => {
    expect(normalizeTarget('/api/users?q=a/../b')).toBe('/api/users?q=a/../b');
    expect(normalizeTarget('/api/../admin')).toBe('/admin');
    expect(normalizeTarget('/api/%2e%2e/admin?x=1')).toBe('/admin?x=1');
    expect(normalizeTarget('/api/./x')).toBe('/api/x');
    expect(normalizeTarget('//admin')).toBe('/admin');
    expect(normalizeTarget('/api//x')).toBe('/api/x');
    expect(normalizeTarget('/\\admin')).toBe('/admin');
    expect(normalizeTarget('/../../etc')).toBe('/etc');
    expect(normalizeTarget('*')).toBe('*');
  });

  it('so a prefix rule cannot be passed by a path that means another one', () => {
    const r = rules(WEB_GET_API);
    expect(r.check('web', 'GET', normalizeTarget('/api/../admin'), {})?.reason).toBe(
      'intention-deny web -> api (permission 1: /admin)',
    );
  });
});

const certs = webApiPki();

const { apiInstance, webProxy } = webApiFixture(certs);

describe('L7 permissions through a real pair', () => {
  it('allows GET /api/*, refuses DELETE and /admin with 403 naming the permission, on the same keep-alive connections', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { intentions: WEB_GET_API });
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);
    const sockets = new Set<unknown>();
    agent.on('free', (s) => sockets.add(s));

    const ok = await get(port, '/api/users', { agent });
    const del = await get(port, '/api/users', { agent, method: 'DELETE' });
    // A refused request's body is read and dropped: the connection goes on.
    const post = await get(port, '/api/users', { agent, method: 'POST', body: 'x'.repeat(100_000) });
    const admin = await get(port, '/admin', { agent });
    const dotted = await get(port, '/api/../admin', { agent });
    const again = await get(port, '/api/again', { agent });

    expect(ok.status).toBe(200);
    expect(del.status).toBe(403);
    expect(del.headers['x-meshctl-reason']).toBe('intention-deny web -> api (permission 3: /)');
    expect(post.headers['x-meshctl-reason']).toBe('intention-deny web -> api (permission 3: /)');
    expect(admin.status).toBe(403);
    expect(admin.headers['x-meshctl-reason']).toBe('intention-deny web -> api (permission 1: /admin)');
    expect(dotted.headers['x-meshctl-reason']).toBe('intention-deny web -> api (permission 1: /admin)');
    expect(again.status).toBe(200);
    // The proof is the mesh hop's; the app gets none.
    expect(del.headers['x-meshctl-proof']).toBeUndefined();
    // One connection from the app to its sidecar, one mesh connection, one connection to the app.
    expect(sockets.size).toBe(1);
    const stats = a.proxy.stats() as {
      inbound: { mode: string; connections: { total: number }; permissionDenials: Record<string, number> };
    };
    expect(stats.inbound.mode).toBe('http');
    expect(stats.inbound.connections.total).toBe(1);
    expect(stats.inbound.permissionDenials).toEqual({
      'intention-deny web -> api (permission 3: /)': 2,
      'intention-deny web -> api (permission 1: /admin)': 2,
    });
    expect(a.app!.connections).toBe(1);
    expect(a.app!.seen.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /api/users', 'GET /api/again']);
    // The caller's side counts the refusals as the mesh's answers, by kind.
    expect(web.metrics()!.upstreams[0]).toMatchObject({
      requests: 6,
      responses: { '2xx': 2 },
      meshErrors: { 'intention-deny': 4 },
    });
  });

  it('a push of new permissions applies to the next request on an open connection', async () => {
    const a = await apiInstance('api-1', '127.0.0.2', { intentions: WEB_GET_API });
    const web = await webProxy({ service: 'api', endpoints: [a.endpoint] });
    const port = outboundPort(web, 'api');
    const agent = keepAliveAgent(1);
    expect((await get(port, '/api/x', { agent })).status).toBe(200);
    await a.proxy.apply({
      ...a.snapshot(2),
      intentions: [
        { source: 'web', destination: 'api', action: 'allow', permissions: [{ action: 'deny', pathPrefix: '/api/' }] },
      ],
    });
    const r = await get(port, '/api/x', { agent });
    expect(r.headers['x-meshctl-reason']).toBe('intention-deny web -> api (permission 1: /api/)');
  });
});
