/** Shared fixtures for the CA tests: openssl runner, temp files, hand-made (bad) CSRs and certificates. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import { execa } from 'execa';
import { ECDSA_SHA256, EC_P256_KEYGEN, x509 } from '../../src/ca/x509.js';

export const TD = 'mesh.local';

/** Runs openssl with PEM inputs written to a private temp dir; returns stdout. */
export async function openssl(args: (dir: string) => string[], files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-ca-test-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o600 });
    const r = await execa('openssl', args(dir), { cwd: dir });
    return r.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `openssl x509 -noout -text` of a PEM certificate. */
export function opensslText(certPem: string): Promise<string> {
  return openssl(() => ['x509', '-noout', '-text', '-in', 'c.pem'], { 'c.pem': certPem });
}

/** Fingerprint as `openssl x509 -fingerprint -sha256` prints it (the part after '='). */
export async function opensslFingerprint(certPem: string): Promise<string> {
  const out = await openssl(() => ['x509', '-noout', '-fingerprint', '-sha256', '-in', 'c.pem'], { 'c.pem': certPem });
  return out.trim().split('=')[1] ?? '';
}

/** `openssl verify -CAfile root leaf`; resolves to its stdout (or rejects when openssl says no). */
export function opensslVerify(rootPem: string, leafPem: string): Promise<string> {
  return openssl(() => ['verify', '-CAfile', 'root.pem', 'leaf.pem'], { 'root.pem': rootPem, 'leaf.pem': leafPem });
}

/** A CA root made by openssl itself (SEC1 "EC PRIVATE KEY"), to check we interoperate with roots we did not make. */
export async function opensslRoot(trustDomain: string): Promise<{ certPem: string; keyPem: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshctl-ca-test-'));
  try {
    await execa('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'k.pem'], { cwd: dir });
    await execa(
      'openssl',
      [
        'req',
        '-x509',
        '-key',
        'k.pem',
        '-out',
        'c.pem',
        '-days',
        '2',
        '-subj',
        '/O=Example/CN=External Root',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-addext',
        `subjectAltName=URI:spiffe://${trustDomain}`,
      ],
      { cwd: dir },
    );
    return { certPem: await readFile(join(dir, 'c.pem'), 'utf8'), keyPem: await readFile(join(dir, 'k.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Keys = webcrypto.CryptoKeyPair;

export async function ecKeys(namedCurve: 'P-256' | 'P-384' = 'P-256'): Promise<Keys> {
  return webcrypto.subtle.generateKey({ ...EC_P256_KEYGEN, namedCurve }, true, ['sign', 'verify']);
}

const RSA_ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

export async function rsaKeys(): Promise<Keys> {
  return webcrypto.subtle.generateKey(RSA_ALG, true, ['sign', 'verify']);
}

/**
 * A CSR built directly with @peculiar/x509, bypassing createKeyAndCsr's checks, so tests can
 * make the requests a hostile or broken client would send.
 */
export async function rawCsr(opts: {
  sans?: x509.JsonGeneralNames;
  extensions?: x509.Extension[];
  keys?: Keys;
  rsa?: boolean;
  cn?: string;
}): Promise<string> {
  const keys = opts.keys ?? (opts.rsa ? await rsaKeys() : await ecKeys());
  const extensions = [
    ...(opts.sans ? [new x509.SubjectAlternativeNameExtension(opts.sans)] : []),
    ...(opts.extensions ?? []),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [opts.cn ?? 'someone'] }],
    keys,
    signingAlgorithm: opts.rsa ? RSA_ALG : ECDSA_SHA256,
    extensions,
  });
  return csr.toString('pem');
}

/**
 * A self-signed certificate with arbitrary SANs, for identity checks that do not look at the
 * chain; a leaf as the mesh CA makes them (CA:FALSE, digitalSignature) unless `extensions` says otherwise.
 */
export async function rawCert(
  sans: x509.JsonGeneralNames | undefined,
  extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  ],
): Promise<string> {
  const keys = await ecKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: ['raw'] }],
    keys,
    signingAlgorithm: ECDSA_SHA256,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    extensions: [...extensions, ...(sans ? [new x509.SubjectAlternativeNameExtension(sans)] : [])],
  });
  return cert.toString('pem');
}

export function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}

export function derToPem(der: Buffer, label: string): string {
  const b64 =
    der
      .toString('base64')
      .match(/.{1,64}/g)
      ?.join('\n') ?? '';
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Replaces one occurrence of `from` with `to` (same length) inside the DER of a PEM, keeping the PEM well-formed. */
export function tamperPem(pem: string, label: string, from: string, to: string): string {
  if (from.length !== to.length) throw new Error('tamperPem needs same-length strings');
  const der = pemToDer(pem);
  const at = der.indexOf(Buffer.from(from, 'latin1'));
  if (at < 0) throw new Error(`"${from}" not found in the DER`);
  Buffer.from(to, 'latin1').copy(der, at);
  return derToPem(der, label);
}

/** Flips the last byte of the DER (inside the signature value), keeping it parsable. */
export function flipLastByte(pem: string, label: string): string {
  const der = pemToDer(pem);
  der[der.length - 1] = der[der.length - 1]! ^ 0x01;
  return derToPem(der, label);
}
