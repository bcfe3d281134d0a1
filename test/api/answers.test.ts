/**
 * What the registry's API answers to requests a client should not send (#11.6): each gets its
 * own clear code and status, and none changes anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/https.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

describe('registry API answers to bad requests', () => {
  let t: TestRegistry;
  const reg = (body: string, contentType?: string) =>
    rawRequest(t.url, {
      method: 'PUT',
      path: '/v1/catalog/register',
      ca: t.caPem,
      token: t.init.adminToken,
      body,
      ...(contentType ? { contentType } : {}),
    });
  const serviceBody = (extra = '') => `{"node":"n1","service":{"name":"api","port":9000${extra}}}`;

  beforeAll(async () => {
    t = await startTestRegistry();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 415 to a text/plain body', async () => {
    const r = await reg(serviceBody(), 'text/plain');
    expect(r.status).toBe(415);
    expect(r.body).toMatchObject({
      code: 'MESH_ERR_UNSUPPORTED_MEDIA_TYPE',
      message: 'request body must be application/json',
    });
  });

  it('answers a clear 400 to a __proto__ key, at any depth', async () => {
    for (const body of [`{"__proto__":{"admin":true}}`, serviceBody(',"meta":{"__proto__":{"x":"1"}}')]) {
      const r = await reg(body);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({
        code: 'MESH_ERR_BAD_REQUEST',
        message: 'request body has a "__proto__" or "constructor.prototype" key, which is never accepted',
      });
    }
  });

  it('answers 404 to an unknown path before asking who calls', async () => {
    for (const token of [undefined, 'mt_wrong', t.init.adminToken]) {
      const r = await rawRequest(t.url, { path: '/v1/no/such/thing', ca: t.caPem, ...(token ? { token } : {}) });
      expect(r.status, String(token)).toBe(404);
      expect(r.body.code).toBe('MESH_ERR_NOT_FOUND');
    }
    // A known path still wants credentials.
    expect((await rawRequest(t.url, { path: '/v1/tokens', ca: t.caPem })).status).toBe(401);
  });

  it("says a blocking query's bad index or wait is in the query, not the body", async () => {
    for (const q of ['index=x', 'index=1&wait=abc', 'index=1&wait=11m']) {
      const r = await rawRequest(t.url, { path: `/v1/catalog/services?${q}`, ca: t.caPem, token: t.init.adminToken });
      expect(r.status, q).toBe(400);
      expect(r.body.message, q).toMatch(/in the query/);
      expect(String(r.body.hint), q).toMatch(/^Fix the query/);
      expect(String(r.body.hint), q).not.toMatch(/body/);
    }
  });

  it('changed nothing with any of them', async () => {
    const r = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem, token: t.init.adminToken });
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).not.toContain('api');
  });
});
