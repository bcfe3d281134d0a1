import { describe, it, expect, beforeAll } from 'vitest';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { createKeyAndCsr } from '../../src/ca/keys.js';
import { createRoot, type RootMaterial } from '../../src/ca/root.js';
import {
  certExpiry,
  fingerprintOf,
  peerIdentity,
  spiffeServerIdentityCheck,
  verifyChain,
} from '../../src/ca/verify.js';
import { EC_P256_KEYGEN, ECDSA_SHA256, x509 } from '../../src/ca/x509.js';
import { MeshError } from '../../src/errors/index.js';
import type { PeerCertificate } from 'node:tls';
import { ecKeys, flipLastByte, opensslFingerprint, rawCert, tamperPem, TD } from './helpers.js';

const API = `spiffe://${TD}/svc/api`;

let root: RootMaterial;
let ca: CertificateAuthority;

async function leafFor(authority: CertificateAuthority, id: string, ttlMs?: number) {
  const { csrPem } = await createKeyAndCsr({ spiffeId: id });
  return authority.signCsr(csrPem, { expectedId: id, ...(ttlMs === undefined ? {} : { ttlMs }) });
}

beforeAll(async () => {
  root = await createRoot({ trustDomain: TD });
  ca = await CertificateAuthority.load({ ...root, trustDomain: TD });
});

describe('peerIdentity', () => {
  let apiPem: string;
  beforeAll(async () => {
    apiPem = (await leafFor(ca, API)).certPem;
  });

  it('reads the identity from a PEM, an X509Certificate and a PeerCertificate-shaped object', () => {
    const want = { ok: true, id: API, kind: 'svc', name: 'api' };
    const x = new X509Certificate(apiPem);
    expect(peerIdentity(apiPem, { trustDomain: TD })).toEqual(want);
    expect(peerIdentity(x, { trustDomain: TD, kind: 'svc' })).toEqual(want);
    expect(peerIdentity({ raw: x.raw } as PeerCertificate, { trustDomain: TD, kind: 'svc', name: 'api' })).toEqual(
      want,
    );
  });

  it('reads node identities', async () => {
    const id = `spiffe://${TD}/node/host-1`;
    const pem = (await leafFor(ca, id)).certPem;
    expect(peerIdentity(pem, { trustDomain: TD, kind: 'node', name: 'host-1' })).toEqual({
      ok: true,
      id,
      kind: 'node',
      name: 'host-1',
    });
  });

  it('accepts extra DNS/IP SANs next to the one URI (registry server certs)', async () => {
    const r = await ca.issueServerCertificate({
      spiffeId: `spiffe://${TD}/svc/registry`,
      dnsNames: ['cp.example.com'],
      ipAddresses: ['127.0.0.1'],
    });
    expect(peerIdentity(r.certPem, { trustDomain: TD, kind: 'svc', name: 'registry' }).ok).toBe(true);
  });

  it.each([
    ['nothing', undefined],
    ['null (destroyed socket)', null],
    ['{} (peer sent no certificate)', {} as PeerCertificate],
    ['an empty raw buffer', { raw: Buffer.alloc(0) } as PeerCertificate],
    ['garbage text', 'not a certificate'],
  ])('no-certificate for %s', (_what, input) => {
    expect(peerIdentity(input, { trustDomain: TD })).toEqual({ ok: false, reason: 'no-certificate' });
  });

  it('multiple-uri-sans', async () => {
    const pem = await rawCert([
      { type: 'url', value: API },
      { type: 'url', value: `spiffe://${TD}/svc/db` },
    ]);
    expect(peerIdentity(pem, { trustDomain: TD })).toEqual({ ok: false, reason: 'multiple-uri-sans' });
  });

  it('no-uri-san, with DNS SANs only or no SAN at all', async () => {
    expect(peerIdentity(await rawCert([{ type: 'dns', value: 'api.mesh.local' }]), { trustDomain: TD })).toEqual({
      ok: false,
      reason: 'no-uri-san',
    });
    expect(peerIdentity(await rawCert(undefined), { trustDomain: TD })).toEqual({ ok: false, reason: 'no-uri-san' });
  });

  it.each([
    'https://mesh.local/svc/api',
    'spiffe://mesh.local/ns/default/sa/api',
    'spiffe://MESH.LOCAL/svc/api',
    'spiffe://mesh.local/svc/api/x',
  ])('not-spiffe for %s', async (uri) => {
    expect(peerIdentity(await rawCert([{ type: 'url', value: uri }]), { trustDomain: TD })).toEqual({
      ok: false,
      reason: 'not-spiffe',
    });
  });

  it('wrong-trust-domain', async () => {
    const otherRoot = await createRoot({ trustDomain: 'other.test' });
    const otherCa = await CertificateAuthority.load({ ...otherRoot, trustDomain: 'other.test' });
    const pem = (await leafFor(otherCa, 'spiffe://other.test/svc/api')).certPem;
    expect(peerIdentity(pem, { trustDomain: TD, kind: 'svc', name: 'api' })).toEqual({
      ok: false,
      reason: 'wrong-trust-domain',
    });
  });

  it('wrong-kind', async () => {
    const pem = (await leafFor(ca, `spiffe://${TD}/node/api`)).certPem;
    expect(peerIdentity(pem, { trustDomain: TD, kind: 'svc', name: 'api' })).toEqual({
      ok: false,
      reason: 'wrong-kind',
    });
  });

  it('wrong-name', () => {
    expect(peerIdentity(apiPem, { trustDomain: TD, kind: 'svc', name: 'db' })).toEqual({
      ok: false,
      reason: 'wrong-name',
    });
  });

  it('spiffeServerIdentityCheck turns the result into what tls.connect expects', () => {
    const raw = { raw: new X509Certificate(apiPem).raw } as PeerCertificate;
    expect(spiffeServerIdentityCheck({ trustDomain: TD, kind: 'svc', name: 'api' })('127.0.0.1', raw)).toBeUndefined();
    const err = spiffeServerIdentityCheck({ trustDomain: TD, kind: 'svc', name: 'db' })('127.0.0.1', raw);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe('MESH_ERR_CERT_INVALID');
    expect((err as MeshError).details).toEqual({ reason: 'wrong-name' });
  });
});

describe('verifyChain', () => {
  it('accepts a leaf of the root', async () => {
    const leaf = await leafFor(ca, API);
    expect(verifyChain(leaf.certPem, [root.certPem])).toEqual({ ok: true });
  });

  it('finds the right root among several', async () => {
    const leaf = await leafFor(ca, API);
    const other = await createRoot({ trustDomain: TD });
    expect(verifyChain(leaf.certPem, [other.certPem, root.certPem])).toEqual({ ok: true });
  });

  it('expired: a one-minute leaf checked just after its NotAfter', async () => {
    const leaf = await leafFor(ca, API, 60_000);
    expect(verifyChain(leaf.certPem, [root.certPem], leaf.notAfter)).toEqual({ ok: true });
    expect(verifyChain(leaf.certPem, [root.certPem], new Date(leaf.notAfter.getTime() + 1000))).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('not-yet-valid: checked just before its NotBefore', async () => {
    const leaf = await leafFor(ca, API);
    expect(verifyChain(leaf.certPem, [root.certPem], leaf.notBefore)).toEqual({ ok: true });
    expect(verifyChain(leaf.certPem, [root.certPem], new Date(leaf.notBefore.getTime() - 1000))).toEqual({
      ok: false,
      reason: 'not-yet-valid',
    });
  });

  it('expired when the root has expired even if the leaf has not', async () => {
    // Our CA never lets a leaf outlive its root, so sign one by hand with the root key.
    const shortRoot = await createRoot({ trustDomain: TD, validityDays: 1 });
    const rootCert = new x509.X509Certificate(shortRoot.certPem);
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      createPrivateKey(shortRoot.keyPem).export({ format: 'der', type: 'pkcs8' }),
      EC_P256_KEYGEN,
      false,
      ['sign'],
    );
    const keys = await ecKeys();
    const leaf = await x509.X509CertificateGenerator.create({
      subject: [{ CN: ['api'] }],
      issuer: rootCert.subjectName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 30 * 24 * 3_600_000),
      signingAlgorithm: ECDSA_SHA256,
      publicKey: keys.publicKey,
      signingKey,
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(rootCert.publicKey)],
    });
    const afterRoot = new Date(rootCert.notAfter.getTime() + 1000);
    expect(afterRoot.getTime()).toBeLessThan(leaf.notAfter.getTime());
    expect(verifyChain(leaf.toString('pem'), [shortRoot.certPem])).toEqual({ ok: true });
    expect(verifyChain(leaf.toString('pem'), [shortRoot.certPem], afterRoot)).toEqual({ ok: false, reason: 'expired' });
  });

  it('unknown-ca: a foreign root, even one with the same name, or no roots', async () => {
    const leaf = await leafFor(ca, API);
    const foreign = await createRoot({ trustDomain: TD });
    expect(new X509Certificate(foreign.certPem).subject).toBe(new X509Certificate(root.certPem).subject);
    expect(verifyChain(leaf.certPem, [foreign.certPem])).toEqual({ ok: false, reason: 'unknown-ca' });
    expect(verifyChain(leaf.certPem, [])).toEqual({ ok: false, reason: 'unknown-ca' });
  });

  it('bad-signature: a tampered signature, or an identity edited after signing', async () => {
    const leaf = await leafFor(ca, API);
    expect(verifyChain(flipLastByte(leaf.certPem, 'CERTIFICATE'), [root.certPem])).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const edited = tamperPem(leaf.certPem, 'CERTIFICATE', '/svc/api', '/svc/adm');
    expect(peerIdentity(edited, { trustDomain: TD }).ok).toBe(true); // the identity check alone would be fooled...
    expect(verifyChain(edited, [root.certPem])).toEqual({ ok: false, reason: 'bad-signature' }); // ...the chain check is not
  });

  it('throws MESH_ERR_CERT_INVALID for unreadable input', () => {
    expect(() => verifyChain('garbage', [root.certPem])).toThrow(MeshError);
    expect(() => verifyChain(root.certPem, ['garbage'])).toThrow(/CA certificate is not a readable PEM certificate/);
  });
});

describe('fingerprintOf / certExpiry', () => {
  it('fingerprints exactly as openssl x509 -fingerprint -sha256', async () => {
    const leaf = await leafFor(ca, API);
    expect(fingerprintOf(leaf.certPem)).toBe(await opensslFingerprint(leaf.certPem));
    expect(fingerprintOf(root.certPem)).toBe(ca.fingerprint);
  });

  it('reads NotAfter', async () => {
    const leaf = await leafFor(ca, API, 3_600_000);
    expect(certExpiry(leaf.certPem)).toEqual(leaf.notAfter);
  });

  it('throws MESH_ERR_CERT_INVALID on garbage', () => {
    for (const f of [() => fingerprintOf('x'), () => certExpiry('x')]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect((err as MeshError).code).toBe('MESH_ERR_CERT_INVALID');
    }
  });
});
