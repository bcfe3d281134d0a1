/**
 * Certificate serials as the mesh compares them: uppercase hex without leading zeros. The CA
 * reports serials in this form, Node's X509Certificate.serialNumber prints them the same way,
 * and revocation lists carry them so; normalising once keeps a stray "0a" from missing "A".
 */
export const SERIAL_RE = /^[0-9A-F]{1,40}$/;

export function normalizeSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+(?=.)/, '');
}
