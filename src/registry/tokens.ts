/**
 * Bearer tokens: `msh_<id>_<secret>`. The id finds the record without a scan; only a hash of
 * the secret is stored, and hashes are compared in constant time. Secrets are 256 random bits,
 * so a fast hash is enough (there is nothing to brute-force).
 *
 * A join token also carries what a node that joins with it may serve (`services`: names or
 * patterns such as `batch-*`, or `anyService`, which must be asked for by name), how long it
 * lives and how many nodes may join with it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenInfo } from '../api/schemas.js';

export type TokenKind = TokenInfo['kind'];

/** What the store holds of a token: what the API shows, and the hash of its secret. */
export interface TokenRecord extends TokenInfo {
  hash: string;
}

export interface TokenScope {
  services?: string[];
  anyService?: boolean;
  maxUses?: number;
  replaceNode?: string;
}

const TOKEN_RE = /^msh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewToken {
  token: string;
  record: TokenRecord;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newToken(
  kind: TokenKind,
  description: string,
  ttlSeconds?: number,
  now = new Date(),
  scope: TokenScope = {},
): NewToken {
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
  if (kind === 'join') {
    record.services = [...new Set(scope.services ?? [])];
    if (scope.anyService) record.anyService = true;
    if (scope.maxUses !== undefined) {
      record.maxUses = scope.maxUses;
      record.uses = 0;
    }
    if (scope.replaceNode !== undefined) record.replaceNode = scope.replaceNode;
  }
  return { token: `msh_${id}_${secret}`, record };
}

export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** Whether the secret is the record's (constant time). Says nothing about whether the token is usable. */
export function secretMatches(record: TokenRecord, secret: string): boolean {
  const want = Buffer.from(record.hash, 'hex');
  const got = Buffer.from(hashSecret(secret), 'hex');
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Why a token with the right secret cannot be used now, or undefined when it can. */
export type TokenUnusable = 'revoked' | 'expired' | 'used-up';

export function tokenUnusable(record: TokenRecord, now = new Date()): TokenUnusable | undefined {
  if (record.revoked) return 'revoked';
  if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now.getTime()) return 'expired';
  if (record.maxUses !== undefined && (record.uses ?? 0) >= record.maxUses) return 'used-up';
  return undefined;
}

/** True when the secret matches the record and the record is usable now. */
export function tokenMatches(record: TokenRecord, secret: string, now = new Date()): boolean {
  return secretMatches(record, secret) && tokenUnusable(record, now) === undefined;
}
