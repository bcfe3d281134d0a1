/** The mesh's certificate authority and identity helpers. */
export * from './spiffe.js';
export * from './root.js';
export * from './keys.js';
export * from './authority.js';
export * from './verify.js';
export * from './identity-cache.js';
export * from './serial.js';
export * from './leaf-rules.js';
export * from './renewal.js';
export { decodePem, MAX_PEM_LENGTH } from './pem.js';
export {
  isValidDnsName,
  isValidIpAddress,
  readSubjectAltNames,
  type SubjectAltNames,
  type SanReadResult,
} from './san.js';
