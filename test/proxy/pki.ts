/**
 * Certificates for the proxy tests, made with the mesh's own CA code: a root (createRoot),
 * CertificateAuthority.load, keys + CSRs (createKeyAndCsr) and leaves (signCsr). Forged
 * certificates the CA would never issue (expired, not yet valid, two URI SANs) are signed
 * directly with the root key, so they chain correctly and only the one flaw differs.
 */
import { createPrivateKey, webcrypto } from 'node:crypto';
import { CertificateAuthority, createKeyAndCsr, createRoot, serviceId } from '../../src/ca/index.js';
import {
  ECDSA_SHA256,
  EC_P256_KEYGEN,
  generateEcKeyPair,
  privateKeyToPem,
  randomSerialHex,
  x509,
} from '../../src/ca/x509.js';

export const TD = 'mesh.local';

export interface Leaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serial: string;
}

export interface Pki {
  readonly trustDomain: string;
  readonly rootPem: string;
  readonly ca: CertificateAuthority;
  /** A leaf for `spiffe://<td>/svc/<service>` from the real CA path. */
  leaf(service: string, ttlMs?: number): Promise<Leaf>;
  /** A leaf signed by this root with whatever URI SANs and validity the test wants. */
  forge(opts: ForgeOptions): Promise<Leaf>;
}

export interface ForgeOptions {
  uris: string[];
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints CA:TRUE (default false). */
  isCa?: boolean;
  /** keyUsage flags (default digitalSignature); null leaves the extension out. */
  keyUsage?: number | null;
}

export async function makePki(trustDomain = TD): Promise<Pki> {
  const root = await createRoot({ trustDomain, validityDays: 2 });
  const ca = await CertificateAuthority.load({ certPem: root.certPem, keyPem: root.keyPem, trustDomain });
  const rootCert = new x509.X509Certificate(root.certPem);
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(root.keyPem).export({ format: 'der', type: 'pkcs8' }),
    EC_P256_KEYGEN,
    false,
    ['sign'],
  );
  const ski = rootCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;

  return {
    trustDomain,
    rootPem: root.certPem,
    ca,
    async leaf(service, ttlMs) {
      const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: serviceId(trustDomain, service) });
      const issued = await ca.signCsr(csrPem, {
        expectedId: serviceId(trustDomain, service),
        ...(ttlMs ? { ttlMs } : {}),
      });
      return { certPem: issued.certPem, keyPem, serial: issued.serial };
    },
    async forge({ uris, notBefore, notAfter, isCa = false, keyUsage = x509.KeyUsageFlags.digitalSignature }) {
      const keys = await generateEcKeyPair();
      const serial = randomSerialHex();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: [{ CN: ['forged'] }],
        issuer: rootCert.subjectName,
        notBefore,
        notAfter,
        signingAlgorithm: ECDSA_SHA256,
        publicKey: keys.publicKey,
        signingKey,
        extensions: [
          new x509.BasicConstraintsExtension(isCa, undefined, true),
          ...(keyUsage === null ? [] : [new x509.KeyUsagesExtension(keyUsage, true)]),
          new x509.ExtendedKeyUsageExtension(
            [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
            false,
          ),
          new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value }))),
          new x509.AuthorityKeyIdentifierExtension(ski),
        ],
      });
      return { certPem: cert.toString('pem') + '\n', keyPem: privateKeyToPem(keys.privateKey), serial };
    },
  };
}

const HOUR = 3_600_000;

export type BadLeafKind =
  | 'expired'
  | 'notYetValid'
  | 'twoUris'
  | 'wrongTrustDomain'
  | 'foreignCa'
  /** Not leaves the mesh CA would issue, each otherwise a good identity: */
  | 'ca'
  | 'certSign'
  | 'crlSign'
  | 'noDigitalSignature'
  | 'noKeyUsage';

/** The kinds of bad client/server certificates the proxy must refuse, each built from `pki` (or a foreign one). */
export async function badLeaves(pki: Pki, service: string): Promise<Record<BadLeafKind, Leaf>> {
  const id = serviceId(pki.trustDomain, service);
  const now = Date.now();
  const foreign = await makePki(pki.trustDomain);
  const valid = { uris: [id], notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) };
  const { digitalSignature, keyCertSign, cRLSign, keyAgreement } = x509.KeyUsageFlags;
  return {
    ca: await pki.forge({ ...valid, isCa: true }),
    certSign: await pki.forge({ ...valid, keyUsage: digitalSignature | keyCertSign }),
    crlSign: await pki.forge({ ...valid, keyUsage: digitalSignature | cRLSign }),
    noDigitalSignature: await pki.forge({ ...valid, keyUsage: keyAgreement }),
    noKeyUsage: await pki.forge({ ...valid, keyUsage: null }),
    expired: await pki.forge({ uris: [id], notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) }),
    notYetValid: await pki.forge({ uris: [id], notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) }),
    twoUris: await pki.forge({
      uris: [id, serviceId(pki.trustDomain, 'admin')],
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + HOUR),
    }),
    wrongTrustDomain: await pki.forge({
      uris: [serviceId('other.example', service)],
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + HOUR),
    }),
    foreignCa: await foreign.leaf(service),
  };
}
