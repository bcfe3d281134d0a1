/**
 * Key and CSR for a host's own certificate. Runs on the host that will use the key: the
 * private key is made here and never leaves the caller; only the CSR goes to the registry.
 */
import { MeshError } from '../errors/index.js';
import { isValidDnsName, isValidIpAddress } from './san.js';
import { parseSpiffeId } from './spiffe.js';
import { ECDSA_SHA256, generateEcKeyPair, privateKeyToPem, x509 } from './x509.js';

export interface KeyAndCsrOptions {
  /** The one identity the certificate will carry (service or node SPIFFE ID). */
  readonly spiffeId: string;
  /** Extra DNS SANs, for server certificates reached by host name (the registry). */
  readonly dnsNames?: readonly string[];
  /** Extra IP SANs, for server certificates reached by address. */
  readonly ipAddresses?: readonly string[];
}

export interface KeyAndCsr {
  /** PKCS#8 PEM. Keep it on this host, 0600. */
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function createKeyAndCsr(opts: KeyAndCsrOptions): Promise<KeyAndCsr> {
  const { spiffeId, dnsNames = [], ipAddresses = [] } = opts;
  const id = parseSpiffeId(spiffeId);
  if (!id) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `not a mesh SPIFFE ID: ${JSON.stringify(spiffeId)} (expected spiffe://<trust-domain>/svc|node/<name>)`,
    );
  }
  for (const d of dnsNames) {
    if (!isValidDnsName(d))
      throw new MeshError(
        'MESH_ERR_INVALID_ARGUMENT',
        `invalid DNS name ${JSON.stringify(d)} (lowercase host name, no wildcard)`,
      );
  }
  for (const ip of ipAddresses) {
    if (!isValidIpAddress(ip))
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid IP address ${JSON.stringify(ip)}`);
  }

  const keys = await generateEcKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // The CA sets the subject itself; the CN here only makes the CSR readable with openssl.
    name: [{ CN: [id.name] }],
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: spiffeId },
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  });

  return { keyPem: privateKeyToPem(keys.privateKey), csrPem: csr.toString('pem') + '\n' };
}
