/**
 * The mesh's certificate authority: holds the root and its key, turns CSRs into short-lived
 * leaf certificates. Runs inside the registry.
 *
 * Invariants of every leaf this CA signs (each is enforced below, none is taken from the CSR):
 *   - the key is EC P-256 and the CSR's signature proves the requester holds it;
 *   - exactly one URI SAN, equal to the identity the caller authorised (`expectedId`),
 *     in this CA's trust domain; DNS/IP SANs only when the caller allows them (registry
 *     server certificates), and no SAN of any other type;
 *   - CA:false, keyUsage digitalSignature only, extKeyUsage from `usage`;
 *   - lifetime between 1 minute and 1 year, never past the root's own expiry;
 *     NotBefore backdated two minutes for clock skew (CLOCK_SKEW_MS, renewal.ts);
 *   - a fresh random 16-byte serial, subject CN = the name part of the ID, AKI = root SKI.
 * Nothing else in the CSR (subject, requested extensions such as CA:true) reaches the leaf.
 */
import {
  createPrivateKey,
  createPublicKey,
  X509Certificate as NodeX509Certificate,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { MeshError } from '../errors/index.js';
import { createKeyAndCsr } from './keys.js';
import { decodePem } from './pem.js';
import { CLOCK_SKEW_MS } from './renewal.js';
import { isValidDnsName, isValidIpAddress, readSubjectAltNames } from './san.js';
import { isValidTrustDomain, parseSpiffeId, trustDomainId, TRUST_DOMAIN_RULE } from './spiffe.js';
import { EC_P256_KEYGEN, ECDSA_SHA256, randomSerialHex, x509 } from './x509.js';

export type CertUsage = 'client' | 'server' | 'both';

export interface SignCsrOptions {
  /** The identity the caller has authorised for this requester; the CSR must ask for exactly this. */
  readonly expectedId: string;
  /** Lifetime from now; default 24 h, allowed 1 minute .. 1 year. */
  readonly ttlMs?: number;
  readonly usage?: CertUsage;
  /** Whether DNS and IP SANs may appear (server certificates reached by name or address). */
  readonly allowDnsAndIp?: boolean;
}

export interface IssuedCertificate {
  readonly certPem: string;
  /** Uppercase hex, as Node's X509Certificate.serialNumber and tls.PeerCertificate.serialNumber print it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface ServerCertificateOptions {
  readonly spiffeId: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly ttlMs?: number;
  /** Default 'server'. */
  readonly usage?: CertUsage;
}

export interface ServerCertificate extends IssuedCertificate {
  /** PKCS#8 PEM of the key made for this certificate. */
  readonly keyPem: string;
}

export interface LoadAuthorityOptions {
  readonly certPem: string;
  /** PKCS#8 or SEC1 ("EC PRIVATE KEY") PEM. */
  readonly keyPem: string;
  readonly trustDomain: string;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
export const DEFAULT_LEAF_TTL_MS = DAY_MS;
export const MIN_LEAF_TTL_MS = MINUTE_MS;
export const MAX_LEAF_TTL_MS = 365 * DAY_MS;

const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';
const CSR_SIGNATURE_HASHES = new Set(['SHA-256', 'SHA-384', 'SHA-512']);
const EKU: Record<CertUsage, x509.ExtendedKeyUsage[]> = {
  client: [x509.ExtendedKeyUsage.clientAuth],
  server: [x509.ExtendedKeyUsage.serverAuth],
  both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
};

function refuse(reason: string): never {
  throw new MeshError('MESH_ERR_CSR_INVALID', `CSR refused: ${reason}`);
}

function badCaFiles(message: string, cause?: unknown): MeshError {
  return new MeshError('MESH_ERR_CONFIG', message, {
    hint: 'The CA certificate and key in the data directory are damaged or do not belong together; restore them from a backup (re-initialising invalidates every certificate).',
    cause,
  });
}

function isEcP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `EC ${d?.namedCurve ?? 'unknown curve'}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${d?.modulusLength ?? '?'} bits`;
  return key.asymmetricKeyType ?? 'unknown';
}

export class CertificateAuthority {
  readonly trustDomain: string;
  /** The root certificate, PEM, as clients should pin it. */
  readonly rootPem: string;
  /** SHA-256 of the root's DER, uppercase hex with colons (as `openssl x509 -fingerprint -sha256`). */
  readonly fingerprint: string;
  readonly #root: x509.X509Certificate;
  readonly #signingKey: webcrypto.CryptoKey;
  readonly #authorityKeyId: string;

  private constructor(
    trustDomain: string,
    nodeRoot: NodeX509Certificate,
    root: x509.X509Certificate,
    signingKey: webcrypto.CryptoKey,
    authorityKeyId: string,
  ) {
    this.trustDomain = trustDomain;
    this.rootPem = nodeRoot.toString();
    this.fingerprint = nodeRoot.fingerprint256;
    this.#root = root;
    this.#signingKey = signingKey;
    this.#authorityKeyId = authorityKeyId;
  }

  /** Loads and checks the root and its key; throws MESH_ERR_CONFIG when they are unusable. */
  static async load(opts: LoadAuthorityOptions): Promise<CertificateAuthority> {
    const { certPem, keyPem, trustDomain } = opts;
    if (!isValidTrustDomain(trustDomain)) {
      throw new MeshError(
        'MESH_ERR_CONFIG',
        `invalid trust domain ${JSON.stringify(trustDomain)} in the configuration: must be ${TRUST_DOMAIN_RULE}`,
      );
    }
    let nodeRoot: NodeX509Certificate;
    try {
      nodeRoot = new NodeX509Certificate(certPem);
    } catch (e) {
      throw badCaFiles('the CA certificate is not a readable PEM certificate', e);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (e) {
      throw badCaFiles('the CA key is not a readable PEM private key', e);
    }
    if (!nodeRoot.ca)
      throw badCaFiles('the CA certificate is not a CA certificate (basicConstraints CA:TRUE is missing)');
    if (!isEcP256(key)) throw badCaFiles(`the CA key must be EC P-256, it is ${describeKey(key)}`);
    if (!nodeRoot.checkPrivateKey(key)) throw badCaFiles('the CA key does not belong to the CA certificate');
    if (!nodeRoot.verify(nodeRoot.publicKey)) throw badCaFiles('the CA certificate is not self-signed');

    const root = new x509.X509Certificate(nodeRoot.raw);
    let keyUsage: x509.KeyUsagesExtension | null;
    let ski: x509.SubjectKeyIdentifierExtension | null;
    try {
      keyUsage = root.getExtension(x509.KeyUsagesExtension);
      ski = root.getExtension(x509.SubjectKeyIdentifierExtension);
    } catch (e) {
      throw badCaFiles('the CA certificate has extensions that cannot be read', e);
    }
    if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      throw badCaFiles("the CA certificate's keyUsage does not allow certificate signing");
    }
    const sans = readSubjectAltNames(() => root.extensions);
    if (!sans.ok) throw badCaFiles("the CA certificate's subjectAltName cannot be read");
    // A root made by `meshctl init` names its trust domain; a root from elsewhere may name none.
    const spiffeUris = sans.sans.uris.filter((u) => u.startsWith('spiffe://'));
    if (spiffeUris.length > 0 && !spiffeUris.includes(trustDomainId(trustDomain))) {
      throw badCaFiles(
        `the CA certificate is for ${spiffeUris.join(', ')}, but the configured trust domain is "${trustDomain}"`,
      );
    }

    // Leaves point at the root by its SKI; compute the same RFC 5280 key id when the root has none.
    const authorityKeyId = ski?.keyId ?? Buffer.from(await root.publicKey.getKeyIdentifier()).toString('hex');
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      key.export({ format: 'der', type: 'pkcs8' }),
      EC_P256_KEYGEN,
      false,
      ['sign'],
    );
    return new CertificateAuthority(trustDomain, nodeRoot, root, signingKey, authorityKeyId);
  }

  /**
   * Checks a CSR against the identity the caller authorised and signs a leaf for it.
   * Throws MESH_ERR_CSR_INVALID with the reason when the CSR is refused.
   */
  async signCsr(csrPem: string, opts: SignCsrOptions): Promise<IssuedCertificate> {
    const { expectedId, ttlMs = DEFAULT_LEAF_TTL_MS, usage = 'both', allowDnsAndIp = false } = opts;
    const expected = parseSpiffeId(expectedId);
    if (!expected || expected.trustDomain !== this.trustDomain) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `expected identity ${JSON.stringify(expectedId)} is not a SPIFFE ID in trust domain "${this.trustDomain}"`,
      );
    }
    if (!Object.hasOwn(EKU, usage)) {
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `certificate usage must be client, server or both, got ${JSON.stringify(usage)}`,
      );
    }
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < MIN_LEAF_TTL_MS || ttlMs > MAX_LEAF_TTL_MS) {
      refuse(`requested lifetime ${String(ttlMs)} ms is outside 1 minute .. 1 year`);
    }

    const der = decodePem(csrPem, 'CERTIFICATE REQUEST');
    if (!der) refuse('not a single PEM "CERTIFICATE REQUEST" block');
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(der);
    } catch {
      refuse('the PEM block is not a parsable PKCS#10 request');
    }

    let publicKey: KeyObject;
    // Typed loosely: the library's algorithm types lean on DOM lib types this project does not load.
    let signatureAlgorithm: { name?: string; hash?: { name?: string } };
    try {
      publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
      signatureAlgorithm = csr.signatureAlgorithm;
    } catch {
      refuse('the public key or signature algorithm cannot be read');
    }
    if (!isEcP256(publicKey)) refuse(`the key must be EC P-256, it is ${describeKey(publicKey)}`);
    if (signatureAlgorithm.name !== 'ECDSA' || !CSR_SIGNATURE_HASHES.has(signatureAlgorithm.hash?.name ?? '')) {
      refuse('the CSR must be signed with ECDSA and SHA-256/384/512');
    }
    let signatureOk: boolean;
    try {
      signatureOk = await csr.verify();
    } catch {
      signatureOk = false;
    }
    if (!signatureOk) refuse("the signature does not verify with the CSR's own key (altered or corrupt request)");

    let extensionRequests: number;
    try {
      extensionRequests = csr.getAttributes(EXTENSION_REQUEST_OID).length;
    } catch {
      refuse('the CSR attributes cannot be read');
    }
    if (extensionRequests > 1) refuse('more than one extensionRequest attribute');
    const read = readSubjectAltNames(() => csr.extensions);
    if (!read.ok)
      refuse(
        read.reason === 'duplicate-extension'
          ? 'more than one subjectAltName extension'
          : 'the subjectAltName cannot be parsed',
      );
    const { uris, dnsNames, ipAddresses, others } = read.sans;

    if (uris.length === 0) refuse(`no URI SAN; exactly one is required: ${expectedId}`);
    if (uris.length > 1) refuse(`${uris.length} URI SANs (${uris.join(', ')}); exactly one is allowed`);
    const uri = uris[0]!;
    const id = parseSpiffeId(uri);
    if (!id) refuse(`URI SAN ${JSON.stringify(uri)} is not a mesh SPIFFE ID (spiffe://<trust-domain>/svc|node/<name>)`);
    if (id.trustDomain !== this.trustDomain)
      refuse(`URI SAN ${uri} is in trust domain "${id.trustDomain}"; this CA signs only for "${this.trustDomain}"`);
    if (uri !== expectedId) refuse(`URI SAN ${uri} is not the authorised identity ${expectedId}`);
    if (others.length > 0) refuse(`SAN entries other than URI, DNS and IP are not allowed (${others.join(', ')})`);
    if (!allowDnsAndIp && dnsNames.length + ipAddresses.length > 0) {
      refuse(`DNS/IP SANs are not allowed for this certificate (${[...dnsNames, ...ipAddresses].join(', ')})`);
    }
    for (const d of dnsNames)
      if (!isValidDnsName(d)) refuse(`invalid DNS SAN ${JSON.stringify(d)} (lowercase host name, no wildcard)`);
    for (const ip of ipAddresses) if (!isValidIpAddress(ip)) refuse(`invalid IP SAN ${JSON.stringify(ip)}`);

    const now = Date.now();
    const rootNotAfter = this.#root.notAfter.getTime();
    if (now >= rootNotAfter) {
      throw new MeshError(
        'MESH_ERR_CONFIG',
        `the CA root expired at ${this.#root.notAfter.toISOString()}; it cannot issue certificates`,
        {
          hint: 'Make a new CA root (`meshctl init --server --force`) and re-join every host.',
        },
      );
    }

    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: [{ CN: [id.name] }],
      issuer: this.#root.subjectName,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      // A leaf outliving its root would fail verification anyway; say so in notAfter instead.
      notAfter: new Date(Math.min(now + ttlMs, rootNotAfter)),
      signingAlgorithm: ECDSA_SHA256,
      publicKey: csr.publicKey,
      signingKey: this.#signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(EKU[usage], false),
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: uri },
          ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
          ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
        ]),
        new x509.AuthorityKeyIdentifierExtension(this.#authorityKeyId),
        await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      ],
    });

    return {
      certPem: cert.toString('pem') + '\n',
      serial: cert.serialNumber.toUpperCase(),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }

  /**
   * Key and certificate for the registry's own TLS listener. The key is made here because
   * the registry runs where the CA is; it still goes through signCsr, so the same checks apply.
   */
  async issueServerCertificate(opts: ServerCertificateOptions): Promise<ServerCertificate> {
    const { spiffeId, dnsNames = [], ipAddresses = [], ttlMs, usage = 'server' } = opts;
    const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId, dnsNames, ipAddresses });
    const issued = await this.signCsr(csrPem, {
      expectedId: spiffeId,
      usage,
      allowDnsAndIp: true,
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
    return { ...issued, keyPem };
  }
}
