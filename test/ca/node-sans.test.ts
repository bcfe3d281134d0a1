/**
 * URI SANs from Node's own parse: exact for the plain certificates the mesh issues, and "don't
 * know" (so the DER is read instead) for anything Node's text could misstate. The answers match
 * a full DER read on every certificate here.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { createKeyAndCsr } from '../../src/ca/keys.js';
import { uriSansFromNode } from '../../src/ca/node-sans.js';
import { createRoot } from '../../src/ca/root.js';
import { readSubjectAltNames } from '../../src/ca/san.js';
import { peerIdentity } from '../../src/ca/verify.js';
import { ECDSA_SHA256, x509 } from '../../src/ca/x509.js';
import { ecKeys, rawCert, TD } from './helpers.js';

const API = `spiffe://${TD}/svc/api`;
let ca: CertificateAuthority;

/** What the DER says, with @peculiar/x509: the reference. */
function derUris(pem: string): string[] | 'unreadable' {
  const c = new x509.X509Certificate(pem);
  const r = readSubjectAltNames(() => c.extensions);
  return r.ok ? r.sans.uris : 'unreadable';
}

async function twoSanExtensions(): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: ['dup'] }],
    keys: await ecKeys(),
    signingAlgorithm: ECDSA_SHA256,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    extensions: [
      // A leaf as the mesh CA makes them otherwise, so only the SANs decide (leaf-rules.ts).
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: API }]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}/svc/db` }]),
    ],
  });
  return cert.toString('pem');
}

beforeAll(async () => {
  const root = await createRoot({ trustDomain: TD });
  ca = await CertificateAuthority.load({ ...root, trustDomain: TD });
});

describe('uriSansFromNode', () => {
  it('reads the URI SAN of a leaf the mesh CA issued', async () => {
    const { csrPem } = await createKeyAndCsr({ spiffeId: API });
    const { certPem } = await ca.signCsr(csrPem, { expectedId: API });
    expect(uriSansFromNode(new X509Certificate(certPem))).toEqual([API]);
    expect(derUris(certPem)).toEqual([API]);
  });

  it('reads it next to DNS and IP entries (a registry server certificate), IPv6 included', async () => {
    const { certPem } = await ca.issueServerCertificate({
      spiffeId: `spiffe://${TD}/svc/registry`,
      dnsNames: ['cp.example.com', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    expect(uriSansFromNode(new X509Certificate(certPem))).toEqual([`spiffe://${TD}/svc/registry`]);
  });

  it('reads none, or two, exactly', async () => {
    expect(uriSansFromNode(new X509Certificate(await rawCert(undefined)))).toEqual([]);
    expect(uriSansFromNode(new X509Certificate(await rawCert([{ type: 'dns', value: 'a.example' }])))).toEqual([]);
    const two = await rawCert([
      { type: 'url', value: API },
      { type: 'url', value: `spiffe://${TD}/svc/db` },
    ]);
    expect(uriSansFromNode(new X509Certificate(two))).toEqual([API, `spiffe://${TD}/svc/db`]);
  });

  it.each([
    ['a URI with a comma (Node quotes it)', [{ type: 'url', value: `${API},x` }]],
    ['a URI that looks like two entries', [{ type: 'url', value: `${API}, URI:spiffe://${TD}/svc/db` }]],
    ['a URI with a quote', [{ type: 'url', value: `${API}"` }]],
    [
      'an email entry beside the URI',
      [
        { type: 'url', value: API },
        { type: 'email', value: 'a@example.com' },
      ],
    ],
    [
      'a directory name beside the URI',
      [
        { type: 'url', value: API },
        { type: 'dn', value: 'CN=x, O=y' },
      ],
    ],
  ] as Array<[string, x509.JsonGeneralNames]>)(
    'does not answer for %s; peerIdentity reads the DER',
    async (_w, sans) => {
      const pem = await rawCert(sans);
      expect(uriSansFromNode(new X509Certificate(pem))).toBeUndefined();
      const uris = derUris(pem);
      const r = peerIdentity(pem, { trustDomain: TD });
      if (uris === 'unreadable') expect(r).toEqual({ ok: false, reason: 'not-spiffe' });
      else if (uris.length === 1 && uris[0] === API) expect(r).toMatchObject({ ok: true, id: API });
      else expect(r.ok).toBe(false);
    },
  );

  it('does not answer for a certificate with two SAN extensions (Node prints only the first); peerIdentity refuses it', async () => {
    const pem = await twoSanExtensions();
    expect(new X509Certificate(pem).subjectAltName).toBe(`URI:${API}`);
    expect(uriSansFromNode(new X509Certificate(pem))).toBeUndefined();
    expect(peerIdentity(pem, { trustDomain: TD })).toEqual({ ok: false, reason: 'not-spiffe' });
  });
});
