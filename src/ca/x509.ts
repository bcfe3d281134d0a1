/**
 * The one place that loads @peculiar/x509 and sets it up; every other CA module imports
 * the library from here so the set-up happens exactly once and before first use.
 */
// @peculiar/x509 v2 resolves its algorithms through tsyringe, which needs a Reflect
// metadata polyfill loaded before the library itself (see its README). ESM evaluates
// imports in source order, so this line must stay first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto);

export { x509 };

/** The only key type in the mesh: EC P-256 (roots and leaves alike). */
export const EC_P256_KEYGEN: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
/** Signature algorithm for everything the CA and the hosts sign. */
export const ECDSA_SHA256: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** A fresh EC P-256 key pair; the private key is extractable only so it can be written as PEM. */
export async function generateEcKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256_KEYGEN, true, ['sign', 'verify']);
}

/** PKCS#8 PEM, the form Node's tls and openssl both read. */
export function privateKeyToPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ format: 'pem', type: 'pkcs8' }).toString();
}

/**
 * A random positive 16-byte serial (RFC 5280 4.1.2.2: positive, at most 20 octets, and
 * unpredictable). The top bit is cleared so the DER INTEGER stays positive without a pad
 * byte, and the first byte is never zero so the serial is always exactly 16 bytes.
 * Returned as uppercase hex, the form Node's X509Certificate.serialNumber uses.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex').toUpperCase();
}
