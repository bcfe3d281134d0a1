/**
 * Peer identity from Node's own certificate parser (the proxy's path, no @peculiar/x509):
 * Node's SAN text is split exactly, quoted entries included, so no crafted value can pass
 * for a second name, and every answer matches a full DER read (@peculiar/x509, the reference).
 * The identity rules themselves are pinned in verify.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { peerIdentity, splitSubjectAltName, validityOf } from '../../src/ca/peer.js';
import { readSubjectAltNames } from '../../src/ca/san.js';
import { ECDSA_SHA256, x509 } from '../../src/ca/x509.js';
import { ecKeys, rawCert, TD } from './helpers.js';

const API = `spiffe://${TD}/svc/api`;

describe('splitSubjectAltName', () => {
  it('splits plain entries of every type Node prints', () => {
    expect(splitSubjectAltName('URI:spiffe://a/svc/b, DNS:x.example, IP Address:127.0.0.1')).toEqual([
      { type: 'URI', value: 'spiffe://a/svc/b', quoted: false },
      { type: 'DNS', value: 'x.example', quoted: false },
      { type: 'IP Address', value: '127.0.0.1', quoted: false },
    ]);
    expect(splitSubjectAltName(undefined)).toEqual([]);
  });

  it('reads quoted entries as one value, commas and quotes inside included', () => {
    expect(splitSubjectAltName('URI:"a, URI:b\\"c", DNS:d')).toEqual([
      { type: 'URI', value: 'a, URI:b"c', quoted: true },
      { type: 'DNS', value: 'd', quoted: false },
    ]);
  });

  it.each(['no-colon', 'URI:"unterminated', 'URI:"x"junk'])('refuses text Node never prints: %s', (text) => {
    expect(splitSubjectAltName(text)).toBeUndefined();
  });
});

describe('peerIdentity on Node certificates', () => {
  it('a URI holding a comma and a second ID is one name, and not a SPIFFE ID', async () => {
    const pem = await rawCert([{ type: 'url', value: `${API}, URI:spiffe://${TD}/svc/db` }]);
    expect(new X509Certificate(pem).subjectAltName).toContain('"');
    expect(peerIdentity(pem, { trustDomain: TD })).toEqual({ ok: false, reason: 'not-spiffe' });
  });

  it('counts a quoted URI next to a good one as two', async () => {
    const pem = await rawCert([
      { type: 'url', value: API },
      { type: 'url', value: 'spiffe://x/svc/a,b' },
    ]);
    expect(peerIdentity(pem, { trustDomain: TD })).toEqual({ ok: false, reason: 'multiple-uri-sans' });
  });

  it('reads validity as Dates, to the second', async () => {
    const pem = await rawCert([{ type: 'url', value: API }]);
    const { notBefore, notAfter } = validityOf(new X509Certificate(pem));
    expect(Math.abs(notBefore.getTime() - (Date.now() - 60_000))).toBeLessThan(60_000);
    expect(notAfter.getTime() - notBefore.getTime()).toBe(3_660_000);
  });
});

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

describe('peerIdentity agrees with a full DER read', () => {
  it.each([
    ['one URI', [{ type: 'url', value: API }]],
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
    [
      'DNS and IP entries beside the URI, IPv6 included',
      [
        { type: 'dns', value: 'cp.example.com' },
        { type: 'url', value: API },
        { type: 'ip', value: '::1' },
      ],
    ],
  ] as Array<[string, x509.JsonGeneralNames]>)('%s', async (_w, sans) => {
    const pem = await rawCert(sans);
    const uris = derUris(pem);
    const r = peerIdentity(pem, { trustDomain: TD });
    if (uris === 'unreadable') expect(r).toEqual({ ok: false, reason: 'not-spiffe' });
    else if (uris.length === 1 && uris[0] === API) expect(r).toMatchObject({ ok: true, id: API });
    else expect(r.ok).toBe(false);
  });

  it('refuses a certificate with two SAN extensions, though Node prints only the first', async () => {
    const pem = await twoSanExtensions();
    expect(new X509Certificate(pem).subjectAltName).toBe(`URI:${API}`);
    expect(peerIdentity(pem, { trustDomain: TD })).toEqual({ ok: false, reason: 'not-spiffe' });
  });
});
