/**
 * Bearer tokens: `msh_<id>_<secret>`. The id finds the record without a scan; only a hash of
 * the secret is stored, and hashes are compared in constant time. Secrets are 256 random bits,
 * so a fast hash is enough (there is nothing to brute-force).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenKind = 'admin' | 'join';

export interface TokenRecord {
  id: string;
  kind: TokenKind;
  hash: string;
  description: string;
  createdAt: string;
  expiresAt?: string;
  revoked: boolean;
}

const TOKEN_RE = /^msh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewToken {
  token: string;
  record: TokenRecord;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newToken(kind: TokenKind, description: string, ttlSeconds?: number, now = new Date()): NewToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record: TokenRecord = {
    id,
    kind,
    hash: hashSecret(secret),
    description,
    createdAt: now.toISOString(),
    revoked: false,
  };
  if (ttlSeconds !== undefined) record.expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
  return { token: `msh_${id}_${secret}`, record };
}

export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** True when the secret matches the record and the record is usable now. */
export function tokenMatches(record: TokenRecord, secret: string, now = new Date()): boolean {
  const want = Buffer.from(record.hash, 'hex');
  const got = Buffer.from(hashSecret(secret), 'hex');
  const same = want.length === got.length && timingSafeEqual(want, got);
  if (!same || record.revoked) return false;
  return record.expiresAt === undefined || Date.parse(record.expiresAt) > now.getTime();
}
