import { describe, it, expect, beforeAll } from 'vitest';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { CertificateAuthority, type SignCsrOptions } from '../../src/ca/authority.js';
import { createKeyAndCsr } from '../../src/ca/keys.js';
import { createRoot, type RootMaterial } from '../../src/ca/root.js';
import { peerIdentity, verifyChain } from '../../src/ca/verify.js';
import { x509 } from '../../src/ca/x509.js';
import { MeshError } from '../../src/errors/index.js';
import {
  ecKeys,
  openssl,
  opensslFingerprint,
  opensslRoot,
  opensslText,
  opensslVerify,
  rawCsr,
  tamperPem,
  TD,
} from './helpers.js';

const API = `spiffe://${TD}/svc/api`;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

async function refusal(p: Promise<unknown>): Promise<MeshError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the promise to reject').toBeInstanceOf(MeshError);
  return err as MeshError;
}

let root: RootMaterial;
let ca: CertificateAuthority;

beforeAll(async () => {
  root = await createRoot({ trustDomain: TD });
  ca = await CertificateAuthority.load({ ...root, trustDomain: TD });
});

describe('CertificateAuthority.load', () => {
  it('exposes the root, its trust domain and the openssl fingerprint', async () => {
    expect(ca.trustDomain).toBe(TD);
    expect(new X509Certificate(ca.rootPem).raw.equals(new X509Certificate(root.certPem).raw)).toBe(true);
    expect(ca.fingerprint).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    expect(ca.fingerprint).toBe(await opensslFingerprint(root.certPem));
  });

  it('refuses a key that belongs to another root', async () => {
    const other = await createRoot({ trustDomain: TD });
    const err = await refusal(
      CertificateAuthority.load({ certPem: root.certPem, keyPem: other.keyPem, trustDomain: TD }),
    );
    expect(err.code).toBe('MESH_ERR_CONFIG');
    expect(err.message).toMatch(/does not belong/);
  });

  it('refuses a leaf certificate as CA', async () => {
    const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: API });
    const leaf = await ca.signCsr(csrPem, { expectedId: API });
    const err = await refusal(CertificateAuthority.load({ certPem: leaf.certPem, keyPem, trustDomain: TD }));
    expect(err.code).toBe('MESH_ERR_CONFIG');
    expect(err.message).toMatch(/not a CA/);
  });

  it('refuses a root made for another trust domain', async () => {
    const err = await refusal(CertificateAuthority.load({ ...root, trustDomain: 'other.test' }));
    expect(err.code).toBe('MESH_ERR_CONFIG');
    expect(err.message).toMatch(/spiffe:\/\/mesh\.local.*"other\.test"/);
  });

  it.each([
    [{ certPem: 'nope' }, /certificate is not a readable/],
    [{ keyPem: 'nope' }, /key is not a readable/],
    [{ trustDomain: 'Bad Domain' }, /invalid trust domain/],
  ])('refuses unreadable input %j', async (patch, message) => {
    const err = await refusal(CertificateAuthority.load({ ...root, trustDomain: TD, ...patch }));
    expect(err.code).toBe('MESH_ERR_CONFIG');
    expect(err.message).toMatch(message);
  });

  it('works with a root and SEC1 key made by openssl', async () => {
    const ext = await opensslRoot(TD);
    expect(ext.keyPem).toMatch(/BEGIN EC PRIVATE KEY/);
    const extCa = await CertificateAuthority.load({ ...ext, trustDomain: TD });
    const { csrPem } = await createKeyAndCsr({ spiffeId: API });
    const leaf = await extCa.signCsr(csrPem, { expectedId: API });
    expect(await opensslVerify(ext.certPem, leaf.certPem)).toMatch(/: OK$/);
    expect(verifyChain(leaf.certPem, [ext.certPem])).toEqual({ ok: true });
    // ...and a root of the same name from another CA is not mistaken for it.
    expect(verifyChain(leaf.certPem, [root.certPem])).toEqual({ ok: false, reason: 'unknown-ca' });
  });
});

describe('signCsr: a good CSR', () => {
  let issued: Awaited<ReturnType<CertificateAuthority['signCsr']>>;
  let leaf: X509Certificate;
  let keyPem: string;
  let before: number;
  let after: number;

  beforeAll(async () => {
    const made = await createKeyAndCsr({ spiffeId: API });
    keyPem = made.keyPem;
    before = Date.now();
    issued = await ca.signCsr(made.csrPem, { expectedId: API });
    after = Date.now();
    leaf = new X509Certificate(issued.certPem);
  });

  it('issues a leaf for the CSR key, chained to the root', async () => {
    const rootCert = new X509Certificate(root.certPem);
    expect(leaf.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(leaf.checkIssued(rootCert)).toBe(true);
    expect(leaf.verify(rootCert.publicKey)).toBe(true);
    expect(leaf.issuer).toBe(rootCert.subject);
    expect(await opensslVerify(root.certPem, issued.certPem)).toMatch(/: OK$/);
  });

  it('carries exactly the one URI SAN, CN = name, CA:false and both EKUs by default', () => {
    expect(leaf.subjectAltName).toBe(`URI:${API}`);
    expect(leaf.subject).toBe('CN=api');
    expect(leaf.ca).toBe(false);
    expect([...(leaf.keyUsage ?? [])].sort()).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(peerIdentity(issued.certPem, { trustDomain: TD, kind: 'svc', name: 'api' })).toEqual({
      ok: true,
      id: API,
      kind: 'svc',
      name: 'api',
    });
  });

  it('reports serial and validity as they are in the certificate', () => {
    expect(issued.serial).toBe(leaf.serialNumber);
    expect(issued.serial).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(issued.notBefore.getTime()).toBe(new Date(leaf.validFrom).getTime());
    expect(issued.notAfter.getTime()).toBe(new Date(leaf.validTo).getTime());
  });

  it('backdates NotBefore two minutes (clock skew) and lasts 24 h by default', () => {
    // Whole seconds in X.509 times: allow the truncation, nothing else.
    expect(issued.notBefore.getTime()).toBeGreaterThanOrEqual(before - 121_000);
    expect(issued.notBefore.getTime()).toBeLessThanOrEqual(after - 120_000);
    expect(issued.notAfter.getTime()).toBeGreaterThanOrEqual(before + DAY - 1000);
    expect(issued.notAfter.getTime()).toBeLessThanOrEqual(after + DAY);
  });

  it('has the extensions openssl should see', async () => {
    const text = await opensslText(issued.certPem);
    const rootText = await opensslText(root.certPem);
    const rootSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(rootText)?.[1];
    expect(rootSki).toBeDefined();
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s+URI:spiffe:\/\/mesh\.local\/svc\/api\n/);
    expect(text).toMatch(/X509v3 Subject Key Identifier:\s+[0-9A-F:]+/);
    expect(text).toMatch(new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${rootSki}`));
    expect(text).toMatch(/Subject: CN = api\n/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
  });

  it('gives every certificate its own serial', async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: API });
    const a = await ca.signCsr(csrPem, { expectedId: API });
    const b = await ca.signCsr(csrPem, { expectedId: API });
    expect(new Set([a.serial, b.serial, issued.serial]).size).toBe(3);
  });
});

describe('signCsr options', () => {
  it.each([
    ['client', [CLIENT_AUTH]],
    ['server', [SERVER_AUTH]],
    ['both', [SERVER_AUTH, CLIENT_AUTH]],
  ] as const)('usage %s sets extKeyUsage', async (usage, ekus) => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: API });
    const c = new X509Certificate((await ca.signCsr(csrPem, { expectedId: API, usage })).certPem);
    expect([...(c.keyUsage ?? [])].sort()).toEqual([...ekus].sort());
  });

  it('honours ttlMs', async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: API });
    const before = Date.now();
    const r = await ca.signCsr(csrPem, { expectedId: API, ttlMs: HOUR });
    const after = Date.now();
    expect(r.notAfter.getTime()).toBeGreaterThanOrEqual(before + HOUR - 1000);
    expect(r.notAfter.getTime()).toBeLessThanOrEqual(after + HOUR);
  });

  it('never lets a leaf outlive the root', async () => {
    const shortRoot = await createRoot({ trustDomain: TD, validityDays: 1 });
    const shortCa = await CertificateAuthority.load({ ...shortRoot, trustDomain: TD });
    const { csrPem } = await createKeyAndCsr({ spiffeId: API });
    const r = await shortCa.signCsr(csrPem, { expectedId: API, ttlMs: 30 * DAY });
    expect(r.notAfter.getTime()).toBe(new Date(new X509Certificate(shortRoot.certPem).validTo).getTime());
  });

  it('signs node identities with CN = node name', async () => {
    const id = `spiffe://${TD}/node/host-1`;
    const { csrPem } = await createKeyAndCsr({ spiffeId: id });
    const c = new X509Certificate((await ca.signCsr(csrPem, { expectedId: id })).certPem);
    expect(c.subject).toBe('CN=host-1');
    expect(c.subjectAltName).toBe(`URI:${id}`);
  });

  it('keeps DNS and IP SANs when allowed', async () => {
    const { csrPem } = await createKeyAndCsr({
      spiffeId: API,
      dnsNames: ['api.example.com'],
      ipAddresses: ['10.0.0.7', 'fd00::7'],
    });
    const r = await ca.signCsr(csrPem, { expectedId: API, allowDnsAndIp: true });
    const text = await opensslText(r.certPem);
    expect(text).toMatch(
      /URI:spiffe:\/\/mesh\.local\/svc\/api, DNS:api\.example\.com, IP Address:10\.0\.0\.7, IP Address:FD00:0:0:0:0:0:0:7/,
    );
  });

  it('copies nothing else from the CSR: requested CA:true, key usages and subject are ignored', async () => {
    const csrPem = await rawCsr({
      cn: 'evil-root',
      sans: [{ type: 'url', value: API }],
      extensions: [
        new x509.BasicConstraintsExtension(true, 5, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
        new x509.Extension('1.2.3.4.5', false, new Uint8Array([0x05, 0x00])),
      ],
    });
    const r = await ca.signCsr(csrPem, { expectedId: API, usage: 'client' });
    const c = new X509Certificate(r.certPem);
    expect(c.ca).toBe(false);
    expect(c.subject).toBe('CN=api');
    expect(c.keyUsage).toEqual([CLIENT_AUTH]);
    const text = await opensslText(r.certPem);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).not.toMatch(/Certificate Sign|Code Signing|1\.2\.3\.4\.5/);
    const oids = new x509.X509Certificate(r.certPem).extensions.map((e) => e.type).sort();
    expect(oids).toEqual(['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37']);
  });
});

describe('signCsr refusals', () => {
  const cases: [string, () => Promise<string>, Partial<SignCsrOptions>, RegExp][] = [
    [
      'two URI SANs',
      () =>
        rawCsr({
          sans: [
            { type: 'url', value: API },
            { type: 'url', value: `spiffe://${TD}/svc/db` },
          ],
        }),
      {},
      /2 URI SANs/,
    ],
    [
      "another service's ID",
      () => rawCsr({ sans: [{ type: 'url', value: `spiffe://${TD}/svc/db` }] }),
      {},
      /svc\/db is not the authorised identity spiffe:\/\/mesh\.local\/svc\/api/,
    ],
    [
      'a node ID for a service',
      () => rawCsr({ sans: [{ type: 'url', value: `spiffe://${TD}/node/api` }] }),
      {},
      /not the authorised identity/,
    ],
    [
      'the wrong trust domain',
      () => rawCsr({ sans: [{ type: 'url', value: 'spiffe://other.test/svc/api' }] }),
      {},
      /trust domain "other\.test"/,
    ],
    ['no SAN at all', () => rawCsr({}), {}, /no URI SAN/],
    ['only a DNS SAN', () => rawCsr({ sans: [{ type: 'dns', value: 'api.example.com' }] }), {}, /no URI SAN/],
    [
      'a non-SPIFFE URI',
      () => rawCsr({ sans: [{ type: 'url', value: 'https://mesh.local/svc/api' }] }),
      {},
      /not a mesh SPIFFE ID/,
    ],
    [
      'a non-canonical SPIFFE URI',
      () => rawCsr({ sans: [{ type: 'url', value: 'spiffe://MESH.local/svc/api' }] }),
      {},
      /not a mesh SPIFFE ID/,
    ],
    [
      'a DNS SAN when not allowed',
      () =>
        rawCsr({
          sans: [
            { type: 'url', value: API },
            { type: 'dns', value: 'api.example.com' },
          ],
        }),
      {},
      /DNS\/IP SANs are not allowed.*api\.example\.com/,
    ],
    [
      'an IP SAN when not allowed',
      () =>
        rawCsr({
          sans: [
            { type: 'url', value: API },
            { type: 'ip', value: '10.1.2.3' },
          ],
        }),
      {},
      /DNS\/IP SANs are not allowed.*10\.1\.2\.3/,
    ],
    [
      'an email SAN',
      () =>
        rawCsr({
          sans: [
            { type: 'url', value: API },
            { type: 'email', value: 'a@b.c' },
          ],
        }),
      { allowDnsAndIp: true },
      /other than URI, DNS and IP/,
    ],
    [
      'a wildcard DNS SAN even when DNS is allowed',
      () =>
        rawCsr({
          sans: [
            { type: 'url', value: API },
            { type: 'dns', value: '*.example.com' },
          ],
        }),
      { allowDnsAndIp: true },
      /invalid DNS SAN/,
    ],
    [
      'two SAN extensions',
      () =>
        rawCsr({
          sans: [{ type: 'url', value: API }],
          extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'x.example.com' }])],
        }),
      { allowDnsAndIp: true },
      /more than one subjectAltName/,
    ],
    [
      'an RSA key',
      () => rawCsr({ rsa: true, sans: [{ type: 'url', value: API }] }),
      {},
      /must be EC P-256, it is RSA 2048 bits/,
    ],
    [
      'an EC P-384 key',
      async () => rawCsr({ keys: await ecKeys('P-384'), sans: [{ type: 'url', value: API }] }),
      {},
      /must be EC P-256, it is EC secp384r1/,
    ],
    [
      'a tampered CSR (identity edited after signing)',
      async () =>
        tamperPem(
          await rawCsr({ sans: [{ type: 'url', value: `spiffe://${TD}/svc/apx` }] }),
          'CERTIFICATE REQUEST',
          '/svc/apx',
          '/svc/api',
        ),
      {},
      /signature does not verify/,
    ],
    ['garbage', async () => 'hello', {}, /not a single PEM "CERTIFICATE REQUEST" block/],
    ['an empty string', async () => '', {}, /not a single PEM/],
    ['a certificate instead of a CSR', async () => root.certPem, {}, /not a single PEM "CERTIFICATE REQUEST"/],
    [
      'a PEM with a broken base64 body',
      async () => '-----BEGIN CERTIFICATE REQUEST-----\nMIIB$$$$\n-----END CERTIFICATE REQUEST-----\n',
      {},
      /not a single PEM/,
    ],
    [
      'a PEM around bytes that are not a CSR',
      async () =>
        `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from('definitely not DER').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`,
      {},
      /not a parsable PKCS#10/,
    ],
    [
      'two PEM blocks',
      async () => {
        const c = await rawCsr({ sans: [{ type: 'url', value: API }] });
        return `${c}\n${c}`;
      },
      {},
      /not a single PEM/,
    ],
    [
      'a ttl under a minute',
      () => rawCsr({ sans: [{ type: 'url', value: API }] }),
      { ttlMs: 59_999 },
      /outside 1 minute \.\. 1 year/,
    ],
    [
      'a ttl over a year',
      () => rawCsr({ sans: [{ type: 'url', value: API }] }),
      { ttlMs: 366 * DAY },
      /outside 1 minute/,
    ],
    [
      'a ttl that is not a number',
      () => rawCsr({ sans: [{ type: 'url', value: API }] }),
      { ttlMs: Number.NaN },
      /outside 1 minute/,
    ],
  ];

  it.each(cases)('refuses %s with MESH_ERR_CSR_INVALID', async (_what, makeCsr, opts, message) => {
    const csrPem = await makeCsr();
    const err = await refusal(ca.signCsr(csrPem, { expectedId: API, ...opts }));
    expect(err.code).toBe('MESH_ERR_CSR_INVALID');
    expect(err.message).toMatch(message);
  });

  it('accepts the same CSR shapes once they are right (the refusals above are not blanket ones)', async () => {
    await expect(
      ca.signCsr(await rawCsr({ sans: [{ type: 'url', value: API }] }), { expectedId: API }),
    ).resolves.toBeDefined();
    await expect(
      ca.signCsr(
        await rawCsr({
          sans: [
            { type: 'url', value: API },
            { type: 'dns', value: 'api.example.com' },
          ],
        }),
        { expectedId: API, allowDnsAndIp: true },
      ),
    ).resolves.toBeDefined();
    await expect(
      ca.signCsr(await rawCsr({ sans: [{ type: 'url', value: API }] }), { expectedId: API, ttlMs: 60_000 }),
    ).resolves.toBeDefined();
  });

  it.each([`spiffe://other.test/svc/api`, 'api', 'spiffe://mesh.local/svc/'])(
    'rejects expectedId %j as a caller error',
    async (expectedId) => {
      const { csrPem } = await createKeyAndCsr({ spiffeId: API });
      const err = await refusal(ca.signCsr(csrPem, { expectedId }));
      expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
    },
  );
});

describe('issueServerCertificate', () => {
  it('makes a key and a server certificate with DNS/IP SANs for the registry', async () => {
    const id = `spiffe://${TD}/svc/registry`;
    const r = await ca.issueServerCertificate({
      spiffeId: id,
      dnsNames: ['cp.example.com'],
      ipAddresses: ['127.0.0.1'],
      ttlMs: 7 * DAY,
    });
    const c = new X509Certificate(r.certPem);
    expect(c.checkPrivateKey(createPrivateKey(r.keyPem))).toBe(true);
    expect(c.subjectAltName).toBe(`URI:${id}, DNS:cp.example.com, IP Address:127.0.0.1`);
    expect(c.keyUsage).toEqual([SERVER_AUTH]);
    expect(r.notAfter.getTime() - r.notBefore.getTime()).toBeGreaterThan(7 * DAY - 2000);
    expect(await opensslVerify(root.certPem, r.certPem)).toMatch(/: OK$/);
    // Node's own host check works for clients that dial the registry by name.
    const out = await openssl(
      () => ['x509', '-noout', '-checkhost', 'cp.example.com', '-checkip', '127.0.0.1', '-in', 'c.pem'],
      { 'c.pem': r.certPem },
    );
    expect(out).toMatch(/Hostname cp\.example\.com does match certificate/);
    expect(out).toMatch(/IP 127\.0\.0\.1 does match certificate/);
  });

  it('refuses an identity outside the trust domain', async () => {
    const err = await refusal(ca.issueServerCertificate({ spiffeId: 'spiffe://other.test/svc/registry' }));
    expect(err.code).toBe('MESH_ERR_INVALID_ARGUMENT');
  });
});
