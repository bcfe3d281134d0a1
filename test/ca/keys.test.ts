import { describe, it, expect } from 'vitest';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { createKeyAndCsr } from '../../src/ca/keys.js';
import { x509 } from '../../src/ca/x509.js';
import { MeshError } from '../../src/errors/index.js';
import { openssl } from './helpers.js';

function sansOf(csrPem: string): { type: string; value: string }[] {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const ext = csr.getExtension('2.5.29.17');
  if (!ext) return [];
  return new x509.SubjectAlternativeNameExtension(ext.rawData).names.toJSON();
}

describe('createKeyAndCsr', () => {
  it('makes an EC P-256 key and a CSR for it with exactly the one URI SAN', async () => {
    const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: 'spiffe://mesh.local/svc/api' });
    const key = createPrivateKey(keyPem);
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(await csr.verify()).toBe(true);
    const csrSpki = Buffer.from(csr.publicKey.rawData);
    expect(csrSpki.equals(createPublicKey(key).export({ format: 'der', type: 'spki' }))).toBe(true);
    expect(sansOf(csrPem)).toEqual([{ type: 'url', value: 'spiffe://mesh.local/svc/api' }]);
    expect(csr.subject).toBe('CN=api');
  });

  it('produces a CSR openssl reads and verifies', async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: 'spiffe://mesh.local/node/host-1' });
    const out = await openssl(() => ['req', '-in', 'r.pem', '-noout', '-verify', '-text'], { 'r.pem': csrPem });
    expect(out).toMatch(/ASN1 OID: prime256v1/);
    expect(out).toMatch(/URI:spiffe:\/\/mesh\.local\/node\/host-1/);
    expect(out).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
  });

  it('adds DNS and IP SANs after the URI when asked', async () => {
    const { csrPem } = await createKeyAndCsr({
      spiffeId: 'spiffe://mesh.local/svc/registry',
      dnsNames: ['cp.example.com', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    expect(sansOf(csrPem)).toEqual([
      { type: 'url', value: 'spiffe://mesh.local/svc/registry' },
      { type: 'dns', value: 'cp.example.com' },
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ]);
  });

  it('makes a new key every call', async () => {
    const a = await createKeyAndCsr({ spiffeId: 'spiffe://mesh.local/svc/api' });
    const b = await createKeyAndCsr({ spiffeId: 'spiffe://mesh.local/svc/api' });
    expect(a.keyPem).not.toBe(b.keyPem);
  });

  it.each([
    [{ spiffeId: 'spiffe://mesh.local/svc/Api' }, /not a mesh SPIFFE ID/],
    [{ spiffeId: 'https://mesh.local/svc/api' }, /not a mesh SPIFFE ID/],
    [{ spiffeId: 'spiffe://mesh.local/svc/api', dnsNames: ['*.example.com'] }, /invalid DNS name/],
    [{ spiffeId: 'spiffe://mesh.local/svc/api', dnsNames: ['Host.example.com'] }, /invalid DNS name/],
    [{ spiffeId: 'spiffe://mesh.local/svc/api', ipAddresses: ['256.1.1.1'] }, /invalid IP address/],
  ])('refuses %j', async (opts, message) => {
    const err = await createKeyAndCsr(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe('MESH_ERR_INVALID_ARGUMENT');
    expect((err as MeshError).message).toMatch(message);
  });
});
