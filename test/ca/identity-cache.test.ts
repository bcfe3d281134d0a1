/** Identity checks cached by certificate fingerprint give the same answers as the uncached check. */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { peerIdentity } from '../../src/ca/index.js';
import { cachedServerIdentityCheck, IdentityCache } from '../../src/ca/identity-cache.js';
import { badLeaves, makePki, type Leaf, type Pki } from '../proxy/pki.js';

let pki: Pki;
let web: Leaf;
let bad: Awaited<ReturnType<typeof badLeaves>>;

beforeAll(async () => {
  pki = await makePki();
  web = await pki.leaf('web');
  bad = await badLeaves(pki, 'web');
});

describe('IdentityCache', () => {
  it('answers as peerIdentity does, and a second time from the cache', () => {
    const cache = new IdentityCache({ trustDomain: pki.trustDomain, kind: 'svc' });
    const cert = new X509Certificate(web.certPem);
    const first = cache.check(cert);
    expect(first).toEqual({ ok: true, id: `spiffe://${pki.trustDomain}/svc/web`, kind: 'svc', name: 'web' });
    expect(cache.check(new X509Certificate(web.certPem))).toBe(first);
    for (const leaf of [bad.twoUris, bad.wrongTrustDomain]) {
      const c = new X509Certificate(leaf.certPem);
      expect(cache.check(c)).toEqual(peerIdentity(c, cache.expect));
      expect(cache.check(c).ok).toBe(false);
    }
    expect(cache.check(undefined)).toEqual({ ok: false, reason: 'no-certificate' });
  });

  it('keeps at most maxEntries certificates, dropping the oldest first', async () => {
    const cache = new IdentityCache({ trustDomain: pki.trustDomain, kind: 'svc' }, 2);
    const certs = [web, await pki.leaf('api'), await pki.leaf('db')].map((l) => new X509Certificate(l.certPem));
    const first = cache.check(certs[0]);
    cache.check(certs[1]);
    expect(cache.check(certs[0])).toBe(first);
    cache.check(certs[2]);
    expect(cache.size).toBe(2);
    // The oldest (web) went; api is still there.
    expect(cache.check(certs[0])).not.toBe(first);
    expect(cache.check(certs[0])).toEqual(first);
  });

  it('checks a server against the expected name, with the reason in the error details', () => {
    const check = cachedServerIdentityCheck({ trustDomain: pki.trustDomain, kind: 'svc', name: 'api' });
    const cert = new X509Certificate(web.certPem) as unknown as Parameters<typeof check>[1];
    for (let i = 0; i < 2; i++) {
      const err = check('127.0.0.1', cert);
      expect(err).toMatchObject({ code: 'MESH_ERR_CERT_INVALID', details: { reason: 'wrong-name' } });
    }
    const ok = cachedServerIdentityCheck({ trustDomain: pki.trustDomain, kind: 'svc', name: 'web' });
    expect(ok('127.0.0.1', cert)).toBeUndefined();
  });
});
