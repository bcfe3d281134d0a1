import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { rawRequest } from '../helpers/https.js';
import { sourceKey, WrongTokenLimiter, WRONG_TOKEN_BURST } from '../../src/registry/rate-limit.js';

describe('the wrong-token limiter', () => {
  it('limits a source after a burst of wrong tokens and lets it try again as the bucket refills', () => {
    let now = 0;
    const l = new WrongTokenLimiter({ burst: 3, refillPerSecond: 0.5, now: () => now });
    expect(l.retryAfter('10.0.0.1')).toBeUndefined();
    expect(l.fail('10.0.0.1').limited).toBe(false);
    expect(l.fail('10.0.0.1').limited).toBe(false);
    expect(l.fail('10.0.0.1').limited).toBe(true);
    expect(l.retryAfter('10.0.0.1')).toBe(2);
    expect(l.retryAfter('10.0.0.2')).toBeUndefined();
    now += 2_000;
    expect(l.retryAfter('10.0.0.1')).toBeUndefined();
    // Fully refilled buckets are forgotten.
    now += 10_000;
    expect(l.retryAfter('10.0.0.1')).toBeUndefined();
    expect(l.size).toBe(0);
  });

  it('remembers at most maxSources sources, dropping the least recently used', () => {
    const l = new WrongTokenLimiter({ burst: 1, maxSources: 100, now: () => 0 });
    for (let i = 0; i < 10_000; i++) l.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(l.size).toBe(100);
    expect(l.retryAfter('10.0.39.15')).toBeGreaterThan(0);
    expect(l.retryAfter('10.0.0.0')).toBeUndefined();
  });

  it('counts IPv6 sources per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
  });
});

describe('wrong tokens at the registry', () => {
  let t: TestRegistry;
  const logLines: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) logLines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    t = await startTestRegistry({ log: pino({ level: 'info' }, sink) });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 429 with Retry-After and MESH_ERR_RATE_LIMITED after a burst of wrong tokens, and logs them', async () => {
    const wrong = 'msh_0123456789abcdef_' + 'A'.repeat(43);
    for (let i = 0; i < WRONG_TOKEN_BURST; i++) {
      const r = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem, token: wrong });
      expect(r.status).toBe(401);
    }
    const limited = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem, token: wrong });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('MESH_ERR_RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body.message).toMatch(/too many wrong tokens from 127\.0\.0\.1/);

    // While limited, a right token from that source is not even looked at ...
    const right = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem, token: t.init.adminToken });
    expect(right.status).toBe(429);
    // ... while other sources, and nodes with certificates, carry on.
    const other = await rawRequest(t.url, {
      path: '/v1/catalog/services',
      ca: t.caPem,
      token: t.init.adminToken,
      localAddress: '127.0.0.9',
    });
    expect(other.status).toBe(200);
    const { certPem, keyPem } = await joinFromOtherSource(t);
    const node = await rawRequest(t.url, { path: '/v1/catalog/services', ca: t.caPem, cert: certPem, key: keyPem });
    expect(node.status).toBe(200);

    const warned = logLines.filter((l) => l.msg === 'wrong token' || l.msg === 'wrong token; source rate-limited');
    expect(warned.length).toBe(WRONG_TOKEN_BURST);
    expect(warned.at(-1)).toMatchObject({ source: '127.0.0.1', limited: true, url: '/v1/catalog/services' });
  });
});

/** The helper's join goes through 127.0.0.1, which is limited here: join from another loopback address. */
async function joinFromOtherSource(t: TestRegistry): Promise<{ certPem: string; keyPem: string }> {
  const { createKeyAndCsr, nodeId } = await import('../../src/ca/index.js');
  const made = await rawRequest(t.url, {
    method: 'POST',
    path: '/v1/tokens',
    ca: t.caPem,
    token: t.init.adminToken,
    body: JSON.stringify({ kind: 'join', anyService: true }),
    localAddress: '127.0.0.9',
  });
  const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId('mesh.local', 'limited-host') });
  const joined = await rawRequest(t.url, {
    method: 'POST',
    path: '/v1/join',
    ca: t.caPem,
    token: made.body.token as string,
    body: JSON.stringify({ nodeName: 'limited-host', address: '127.0.0.9', csr: csrPem }),
    localAddress: '127.0.0.9',
  });
  return { certPem: joined.body.certificate as string, keyPem };
}
