/**
 * Strict PEM decoding for input we do not trust (CSRs arriving over the API): exactly one
 * block with the expected label, base64 body, nothing else around it but whitespace.
 * Parsers that accept "PEM, DER, hex or base64" guess at the format; we do not.
 */

/** Upper bound on an encoded CSR or certificate; ours are well under 1 KiB. */
export const MAX_PEM_LENGTH = 16 * 1024;

/** The DER inside the single PEM block labelled `label`, or undefined when `text` is not exactly that. */
export function decodePem(text: unknown, label: string): Buffer | undefined {
  if (typeof text !== 'string' || text.length > MAX_PEM_LENGTH) return undefined;
  const lines = text.trim().split(/\r?\n/);
  if (lines.length < 3) return undefined;
  if (lines[0] !== `-----BEGIN ${label}-----` || lines[lines.length - 1] !== `-----END ${label}-----`) return undefined;
  const body = lines
    .slice(1, -1)
    .map((l) => l.trim())
    .join('');
  // Padding only at the end, length a multiple of four: Buffer.from would silently skip junk.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) return undefined;
  const der = Buffer.from(body, 'base64');
  return der.length > 0 ? der : undefined;
}
