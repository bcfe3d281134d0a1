import { describe, it, expect, beforeAll } from 'vitest';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createRoot, rootCommonName, type RootMaterial } from '../../src/ca/root.js';
import { MeshError } from '../../src/errors/index.js';
import { opensslFingerprint, opensslText, opensslVerify, TD } from './helpers.js';

const DAY = 24 * 60 * 60 * 1000;

describe('createRoot', () => {
  let root: RootMaterial;
  let cert: X509Certificate;
  let before: number;
  let after: number;

  beforeAll(async () => {
    before = Date.now();
    root = await createRoot({ trustDomain: TD });
    after = Date.now();
    cert = new X509Certificate(root.certPem);
  });

  it('is a self-signed EC P-256 CA for the trust domain', () => {
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe(`CN=meshctl CA ${TD}`);
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.subjectAltName).toBe(`URI:spiffe://${TD}`);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.verify(cert.publicKey)).toBe(true);
  });

  it('returns the matching EC P-256 private key as PKCS#8 PEM', () => {
    expect(root.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(root.keyPem);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(key)).toBe(true);
  });

  it('is valid from two minutes ago (clock skew) for ten years by default', () => {
    // X.509 times have whole seconds, so allow the sub-second truncation.
    const notBefore = new Date(cert.validFrom).getTime();
    const notAfter = new Date(cert.validTo).getTime();
    expect(notBefore).toBeGreaterThanOrEqual(before - 121_000);
    expect(notBefore).toBeLessThanOrEqual(after - 120_000);
    expect(notAfter).toBeGreaterThanOrEqual(before + 3650 * DAY - 1000);
    expect(notAfter).toBeLessThanOrEqual(after + 3650 * DAY);
  });

  it('has a positive 16-byte serial', () => {
    expect(cert.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(cert.serialNumber.startsWith('00')).toBe(false);
  });

  it('reads as the intended CA in openssl', async () => {
    const text = await opensslText(root.certPem);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text).toMatch(/ASN1 OID: prime256v1/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    expect(text).toMatch(/X509v3 Subject Key Identifier:\s+[0-9A-F]{2}(:[0-9A-F]{2}){19}/);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s+URI:spiffe:\/\/mesh\.local\n/);
    expect(text).toMatch(/Subject: CN = meshctl CA mesh\.local/);
    expect(text).not.toMatch(/Extended Key Usage/);
  });

  it('is accepted by openssl verify as a trust anchor', async () => {
    expect(await opensslVerify(root.certPem, root.certPem)).toMatch(/: OK$/);
  });

  it('has the fingerprint openssl prints', async () => {
    expect(cert.fingerprint256).toBe(await opensslFingerprint(root.certPem));
  });

  it('makes a new key and serial every time', async () => {
    const other = await createRoot({ trustDomain: TD });
    expect(other.keyPem).not.toBe(root.keyPem);
    expect(new X509Certificate(other.certPem).serialNumber).not.toBe(cert.serialNumber);
  });
});

describe('createRoot options', () => {
  it('honours validityDays', async () => {
    const r = await createRoot({ trustDomain: 'prod', validityDays: 30 });
    const c = new X509Certificate(r.certPem);
    const span = new Date(c.validTo).getTime() - new Date(c.validFrom).getTime();
    // Plus the two minutes of backdating.
    expect(span).toBeGreaterThanOrEqual(30 * DAY + 120_000 - 1000);
    expect(span).toBeLessThanOrEqual(30 * DAY + 120_000 + 1000);
    expect(c.subjectAltName).toBe('URI:spiffe://prod');
  });

  it.each([
    [{ trustDomain: 'Mesh.Local' }, /invalid trust domain/],
    [{ trustDomain: '' }, /invalid trust domain/],
    [{ trustDomain: TD, validityDays: 0 }, /validity/],
    [{ trustDomain: TD, validityDays: 1.5 }, /validity/],
    [{ trustDomain: TD, validityDays: 40000 }, /validity/],
  ])('refuses %j', async (opts, message) => {
    const err = await createRoot(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe('MESH_ERR_INVALID_ARGUMENT');
    expect((err as MeshError).message).toMatch(message);
  });

  it('keeps the CN within 64 characters for long trust domains; the SAN keeps the full name', async () => {
    const td = `${'a'.repeat(60)}.example`;
    expect(rootCommonName(td)).toHaveLength(64);
    const c = new X509Certificate((await createRoot({ trustDomain: td, validityDays: 1 })).certPem);
    expect(c.subjectAltName).toBe(`URI:spiffe://${td}`);
  });
});
