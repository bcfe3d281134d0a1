/**
 * The leaf rule every mesh identity passes (src/ca/leaf-rules.ts): leaves the mesh CA issues
 * pass; a CA certificate, one that can sign certificates or CRLs, or one that cannot sign
 * are refused, whoever made them (the mesh's own x509 code or openssl).
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { createKeyAndCsr } from '../../src/ca/keys.js';
import { leafRuleFailure } from '../../src/ca/leaf-rules.js';
import { createRoot, type RootMaterial } from '../../src/ca/root.js';
import { peerIdentity } from '../../src/ca/verify.js';
import { x509 } from '../../src/ca/x509.js';
import { openssl, rawCert, TD } from './helpers.js';

let root: RootMaterial;
let ca: CertificateAuthority;

beforeAll(async () => {
  root = await createRoot({ trustDomain: TD });
  ca = await CertificateAuthority.load({ ...root, trustDomain: TD });
});

async function issued(id: string): Promise<string> {
  const { csrPem } = await createKeyAndCsr({ spiffeId: id });
  return (await ca.signCsr(csrPem, { expectedId: id })).certPem;
}

const { digitalSignature, keyCertSign, cRLSign, keyAgreement, keyEncipherment } = x509.KeyUsageFlags;
const bc = (isCa: boolean) => new x509.BasicConstraintsExtension(isCa, undefined, true);
const ku = (flags: number) => new x509.KeyUsagesExtension(flags, true);
const SVC = [{ type: 'url' as const, value: `spiffe://${TD}/svc/api` }];

/** A self-signed certificate made by openssl with the given -addext lines. */
async function opensslCert(addext: string[]): Promise<string> {
  return openssl(
    () => [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'k.pem',
      '-days',
      '1',
      '-subj',
      '/CN=test',
      // openssl adds CA:TRUE and key identifiers to -x509 by default; say what the test means.
      '-config',
      '/dev/null',
      ...addext.flatMap((e) => ['-addext', e]),
    ],
    {},
  );
}

describe('leafRuleFailure', () => {
  it('passes the service and node leaves the mesh CA issues', async () => {
    expect(leafRuleFailure(new X509Certificate(await issued(`spiffe://${TD}/svc/api`)))).toBeUndefined();
    expect(leafRuleFailure(new X509Certificate(await issued(`spiffe://${TD}/node/host-1`)))).toBeUndefined();
  });

  it('refuses the mesh root itself', () => {
    expect(leafRuleFailure(new X509Certificate(root.certPem))).toBe('leaf-is-ca');
  });

  it.each([
    [
      'CA:TRUE with digitalSignature only (OpenSSL alone does not call it a CA)',
      [bc(true), ku(digitalSignature)],
      'leaf-is-ca',
    ],
    ['CA:TRUE without keyUsage', [bc(true)], 'leaf-is-ca'],
    ['keyCertSign', [bc(false), ku(digitalSignature | keyCertSign)], 'leaf-signs-certificates'],
    ['cRLSign', [bc(false), ku(digitalSignature | cRLSign)], 'leaf-signs-certificates'],
    ['keyCertSign without basicConstraints', [ku(digitalSignature | keyCertSign)], 'leaf-signs-certificates'],
    ['keyAgreement only', [bc(false), ku(keyAgreement)], 'leaf-without-digital-signature'],
    ['no keyUsage', [bc(false)], 'leaf-without-digital-signature'],
    ['no extensions but the SAN', [], 'leaf-without-digital-signature'],
  ] as const)('refuses a certificate with %s', async (_what, extensions, reason) => {
    const pem = await rawCert(SVC, [...extensions]);
    expect(leafRuleFailure(new X509Certificate(pem))).toBe(reason);
  });

  it('passes digitalSignature with keyEncipherment or keyAgreement (allowed for SVIDs)', async () => {
    const pem = await rawCert(SVC, [bc(false), ku(digitalSignature | keyEncipherment | keyAgreement)]);
    expect(leafRuleFailure(new X509Certificate(pem))).toBeUndefined();
  });

  it.each([
    ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature', 'leaf-is-ca'],
    ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,cRLSign', 'leaf-signs-certificates'],
    ['basicConstraints=CA:FALSE', 'keyUsage=critical,keyEncipherment', 'leaf-without-digital-signature'],
  ])('reads certificates openssl made: %s, %s', async (bcLine, kuLine, reason) => {
    const pem = await opensslCert([bcLine, kuLine, `subjectAltName=URI:spiffe://${TD}/svc/api`]);
    expect(leafRuleFailure(new X509Certificate(pem))).toBe(reason);
  });

  it('passes an openssl-made leaf with CA:FALSE and digitalSignature', async () => {
    const pem = await opensslCert([
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `subjectAltName=URI:spiffe://${TD}/svc/api`,
    ]);
    expect(leafRuleFailure(new X509Certificate(pem))).toBeUndefined();
  });

  it('fails closed on DER it cannot walk', () => {
    expect(leafRuleFailure({ raw: Buffer.from([0x30, 0x03, 0x02, 0x01]) })).toBe('leaf-unreadable');
    expect(leafRuleFailure({ raw: Buffer.alloc(0) })).toBe('leaf-unreadable');
  });
});

describe('peerIdentity applies the leaf rule', () => {
  it('refuses a CA:TRUE certificate with a good SPIFFE ID, as a service and as a node', async () => {
    const svc = await rawCert(SVC, [bc(true), ku(digitalSignature)]);
    expect(peerIdentity(svc, { trustDomain: TD, kind: 'svc' })).toEqual({ ok: false, reason: 'leaf-is-ca' });
    const node = await rawCert([{ type: 'url', value: `spiffe://${TD}/node/host-1` }], [bc(false), ku(keyCertSign)]);
    expect(peerIdentity(node, { trustDomain: TD, kind: 'node' })).toEqual({
      ok: false,
      reason: 'leaf-signs-certificates',
    });
  });
});
