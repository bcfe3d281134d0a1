/**
 * Certificate serials as the mesh compares them: uppercase hex, whole bytes, without leading
 * zero bytes. The CA reports serials in this form and Node's X509Certificate.serialNumber prints
 * them the same way (a leading 0x0D byte stays "0D"); revocation lists carry them so, and
 * normalising both sides keeps a stray lowercase or pad byte from missing a match.
 */
export const SERIAL_RE = /^[0-9A-F]{1,40}$/;

export function normalizeSerial(serial: string): string {
  return serial.toUpperCase().replace(/^(?:00)+(?=[0-9A-F]{2})/, '');
}
