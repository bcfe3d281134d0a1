/** Tokens kept in the store (hashes only); bootstrap tokens from init are seeded on start. */
import { MeshError } from '../errors/index.js';
import type { Compare, KeyValue, Op, Store } from '../store/types.js';
import type { TokenInfo } from '../api/schemas.js';
import { decode, getJson } from './json-store.js';
import { keys, PREFIX } from './keys.js';
import {
  newToken,
  parseToken,
  secretMatches,
  tokenUnusable,
  type TokenKind,
  type TokenRecord,
  type TokenScope,
} from './tokens.js';

/** The answer to "who is this bearer token?" */
export type TokenCheck =
  | { ok: true; id: string; kind: TokenKind }
  /** Malformed, unknown id or wrong secret: a guess, as far as the registry can tell. */
  | { ok: false; reason: 'invalid' }
  /** The right secret, but the token cannot be used (any more). */
  | { ok: false; reason: 'revoked' | 'expired' | 'used-up'; id: string; record: TokenRecord };

export class TokenStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Puts each record unless a record with its id exists (so a revoked bootstrap token stays revoked). */
  async seed(records: readonly TokenRecord[]): Promise<number> {
    let added = 0;
    for (const r of records) {
      const res = await this.#store.txn({
        compare: [{ key: keys.token(r.id), target: 'exists', value: false }],
        success: [{ type: 'put', key: keys.token(r.id), value: JSON.stringify(r) }],
      });
      if (res.succeeded) added += 1;
    }
    return added;
  }

  async create(
    kind: TokenKind,
    description: string,
    ttlSeconds?: number,
    scope: TokenScope = {},
  ): Promise<{ token: string; info: TokenInfo }> {
    const t = newToken(kind, description, ttlSeconds, new Date(), scope);
    await this.#store.put(keys.token(t.record.id), JSON.stringify(t.record));
    return { token: t.token, info: toInfo(t.record) };
  }

  async list(): Promise<TokenInfo[]> {
    const r = await this.#store.range(PREFIX.tokens);
    return r.kvs.map((kv) => toInfo(decode<TokenRecord>(kv)));
  }

  async get(id: string): Promise<{ record: TokenRecord; kv: KeyValue } | undefined> {
    const kv = await this.#store.get(keys.token(id));
    return kv ? { record: decode<TokenRecord>(kv), kv } : undefined;
  }

  /**
   * Revokes a token. The last usable admin token cannot go: with none left every admin
   * command fails, and the only way back would be the recovery command on the registry host.
   */
  async revoke(id: string): Promise<TokenInfo> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const all = await this.#store.range(PREFIX.tokens);
      const kv = all.kvs.find((x) => x.key === keys.token(id));
      if (!kv)
        throw new MeshError('MESH_ERR_NOT_FOUND', `no token with id '${id}'`, {
          hint: 'List tokens with `meshctl token list`.',
        });
      const rec = decode<TokenRecord>(kv);
      if (rec.revoked) return toInfo(rec);
      const admins = all.kvs.map((x) => decode<TokenRecord>(x)).filter((r) => r.kind === 'admin' && !tokenUnusable(r));
      if (rec.kind === 'admin' && admins.length === 1 && admins[0]!.id === id)
        throw new MeshError(
          'MESH_ERR_LAST_ADMIN_TOKEN',
          `token ${id} is the last admin token; revoking it would lock every admin out`,
        );
      const next = { ...rec, revoked: true };
      // Every other admin token must be as we read it, so two revokes cannot leave none.
      const compare = admins.map((r) => ({
        key: keys.token(r.id),
        target: 'modRevision' as const,
        op: '=' as const,
        value: all.kvs.find((x) => x.key === keys.token(r.id))!.modRevision,
      }));
      const res = await this.#store.txn({
        compare: [...compare, { key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
        success: [{ type: 'put', key: kv.key, value: JSON.stringify(next) }],
      });
      if (res.succeeded) return toInfo(next);
    }
    throw new MeshError('MESH_ERR_CONFLICT', `too much contention revoking token ${id}`);
  }

  /** Who the token is, or why it is refused. */
  async check(token: string, now = new Date()): Promise<TokenCheck> {
    const parsed = parseToken(token);
    if (!parsed) return { ok: false, reason: 'invalid' };
    const rec = await getJson<TokenRecord>(this.#store, keys.token(parsed.id));
    if (!rec || !secretMatches(rec, parsed.secret)) return { ok: false, reason: 'invalid' };
    const unusable = tokenUnusable(rec, now);
    if (unusable) return { ok: false, reason: unusable, id: rec.id, record: rec };
    return { ok: true, id: rec.id, kind: rec.kind };
  }

  /** The kind of a valid token, or undefined for anything else (malformed, unknown, wrong secret, revoked, expired). */
  async authenticate(token: string): Promise<{ id: string; kind: TokenKind } | undefined> {
    const r = await this.check(token);
    return r.ok ? { id: r.id, kind: r.kind } : undefined;
  }

  /**
   * The compare and put that count one use of a join token, for the join's own transaction:
   * the join commits only if the token is unchanged since it was read.
   */
  useOps(rec: TokenRecord, kv: KeyValue): { compare: Compare; put: Op } {
    const next: TokenRecord = rec.maxUses === undefined ? rec : { ...rec, uses: (rec.uses ?? 0) + 1 };
    return {
      compare: { key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision },
      put: { type: 'put', key: kv.key, value: JSON.stringify(next) },
    };
  }
}

export function toInfo(r: TokenRecord): TokenInfo {
  const info: TokenInfo = {
    id: r.id,
    kind: r.kind,
    description: r.description,
    createdAt: r.createdAt,
    revoked: r.revoked,
  };
  if (r.expiresAt) info.expiresAt = r.expiresAt;
  if (r.kind === 'join') {
    info.services = r.services ?? [];
    if (r.anyService) info.anyService = true;
    if (r.maxUses !== undefined) {
      info.maxUses = r.maxUses;
      info.uses = r.uses ?? 0;
    }
    if (r.replaceNode) info.replaceNode = r.replaceNode;
  }
  return info;
}
