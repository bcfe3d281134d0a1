/**
 * Makes the mesh's CA root at `meshctl init --server`.
 *
 * Why @peculiar/x509 and not `selfsigned`: selfsigned v5 can make an EC P-256 CA with
 * basicConstraints, keyUsage and a URI SAN, but it only knows those four extensions and
 * drops any other (with a console warning) — so it cannot emit a Subject Key Identifier.
 * RFC 5280 4.2.1.2 requires the SKI in every CA certificate, and the leaves' Authority Key
 * Identifier points at it so verifiers can pick the right root when two roots share a
 * name (e.g. two meshes both using trust domain "mesh.local"). selfsigned is itself a thin
 * layer over @peculiar/x509, so this is the same machinery with one more extension.
 */
import { MeshError } from '../errors/index.js';
// Roots are backdated like the leaves (renewal.ts says why and by how much).
import { CLOCK_SKEW_MS } from './renewal.js';
import { isValidTrustDomain, trustDomainId, TRUST_DOMAIN_RULE } from './spiffe.js';
import { ECDSA_SHA256, generateEcKeyPair, privateKeyToPem, randomSerialHex, x509 } from './x509.js';

export interface CreateRootOptions {
  readonly trustDomain: string;
  /** Lifetime of the root; default ten years. */
  readonly validityDays?: number;
}

export interface RootMaterial {
  readonly certPem: string;
  /** PKCS#8 PEM. The caller writes it 0600 in a 0700 directory. */
  readonly keyPem: string;
}

export const DEFAULT_ROOT_VALIDITY_DAYS = 3650;
export const MAX_ROOT_VALIDITY_DAYS = 36500;
/** RFC 5280's upper bound for a common name (ub-common-name). */
const MAX_CN_LENGTH = 64;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The root's subject CN. Only for humans: identity decisions read the URI SAN, which holds the full trust domain. */
export function rootCommonName(trustDomain: string): string {
  return `meshctl CA ${trustDomain}`.slice(0, MAX_CN_LENGTH);
}

export async function createRoot(opts: CreateRootOptions): Promise<RootMaterial> {
  const { trustDomain, validityDays = DEFAULT_ROOT_VALIDITY_DAYS } = opts;
  if (!isValidTrustDomain(trustDomain)) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `invalid trust domain ${JSON.stringify(trustDomain)}: must be ${TRUST_DOMAIN_RULE}`,
    );
  }
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_ROOT_VALIDITY_DAYS) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `CA validity must be a whole number of days from 1 to ${MAX_ROOT_VALIDITY_DAYS}, got ${validityDays}`,
    );
  }

  const keys = await generateEcKeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ CN: [rootCommonName(trustDomain)] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + validityDays * DAY_MS),
    signingAlgorithm: ECDSA_SHA256,
    keys,
    extensions: [
      // pathLen 0: the root signs leaves only; an intermediate it signed would not be valid.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(trustDomain) }]),
    ],
  });

  return { certPem: cert.toString('pem') + '\n', keyPem: privateKeyToPem(keys.privateKey) };
}
