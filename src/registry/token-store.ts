/** Tokens kept in the store (hashes only); bootstrap tokens from init are seeded on start. */
import { MeshError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import type { TokenInfo } from '../api/schemas.js';
import { decode, getJson } from './json-store.js';
import { keys, PREFIX } from './keys.js';
import { newToken, parseToken, tokenMatches, type TokenKind, type TokenRecord } from './tokens.js';

export class TokenStore {
  constructor(private readonly store: Store) {}

  /** Puts each record unless a record with its id exists (so a revoked bootstrap token stays revoked). */
  async seed(records: readonly TokenRecord[]): Promise<void> {
    for (const r of records) {
      await this.store.txn({
        compare: [{ key: keys.token(r.id), target: 'exists', value: false }],
        success: [{ type: 'put', key: keys.token(r.id), value: JSON.stringify(r) }],
      });
    }
  }

  async create(kind: TokenKind, description: string, ttlSeconds?: number): Promise<{ token: string; info: TokenInfo }> {
    const t = newToken(kind, description, ttlSeconds);
    await this.store.put(keys.token(t.record.id), JSON.stringify(t.record));
    return { token: t.token, info: toInfo(t.record) };
  }

  async list(): Promise<TokenInfo[]> {
    const r = await this.store.range(PREFIX.tokens);
    return r.kvs.map((kv) => toInfo(decode<TokenRecord>(kv)));
  }

  async revoke(id: string): Promise<TokenInfo> {
    const rec = await getJson<TokenRecord>(this.store, keys.token(id));
    if (!rec)
      throw new MeshError('MESH_ERR_NOT_FOUND', `no token with id '${id}'`, {
        hint: 'List tokens with `meshctl token list`.',
      });
    const next = { ...rec, revoked: true };
    await this.store.put(keys.token(id), JSON.stringify(next));
    return toInfo(next);
  }

  /** The kind of a valid token, or undefined for anything else (malformed, unknown, wrong secret, revoked, expired). */
  async authenticate(token: string): Promise<{ id: string; kind: TokenKind } | undefined> {
    const parsed = parseToken(token);
    if (!parsed) return undefined;
    const rec = await getJson<TokenRecord>(this.store, keys.token(parsed.id));
    if (!rec || !tokenMatches(rec, parsed.secret)) return undefined;
    return { id: rec.id, kind: rec.kind };
  }
}

function toInfo(r: TokenRecord): TokenInfo {
  const info: TokenInfo = {
    id: r.id,
    kind: r.kind,
    description: r.description,
    createdAt: r.createdAt,
    revoked: r.revoked,
  };
  if (r.expiresAt) info.expiresAt = r.expiresAt;
  return info;
}
