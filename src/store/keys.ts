/**
 * Key rules shared by every backend. Keys are ordered by their UTF-8 bytes, as etcd and
 * SQLite's BINARY collation order them, so a range reads the same on every backend.
 */
import { MeshError } from '../errors/index.js';

/**
 * A key must be a non-empty, well-formed string. Lone surrogates are refused because they
 * have no UTF-8 form: SQLite and etcd would silently store a different key.
 */
export function checkKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `store ${what} must be a non-empty string`);
  }
  checkWellFormed(key, what);
}

/** A prefix may be empty ('' means every key). */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', 'store prefix must be a string');
  }
  checkWellFormed(prefix, 'prefix');
}

export function checkValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', 'store value must be a string');
  }
  checkWellFormed(value, 'value');
}

// In a /u regex a surrogate pair is one code point, so \p{Cs} only matches lone surrogates.
const LONE_SURROGATE = /\p{Cs}/u;

function checkWellFormed(s: string, what: string): void {
  if (LONE_SURROGATE.test(s)) {
    throw new MeshError(
      'MESH_ERR_INVALID_ARGUMENT',
      `store ${what} contains a lone UTF-16 surrogate and cannot be stored as UTF-8`,
    );
  }
}

/**
 * Orders two well-formed strings by their UTF-8 bytes. That is code point order, which
 * differs from JavaScript's UTF-16 code unit order only when a surrogate pair (U+10000 and
 * up) meets a code unit in U+E000..U+FFFF: the pair sorts after it in UTF-8.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codeUnitRank(x) - codeUnitRank(y);
  }
  return a.length - b.length;
}

// Surrogates (U+D800..U+DFFF) move above U+FFFF; everything else keeps its order.
function codeUnitRank(u: number): number {
  return u >= 0xd800 && u <= 0xdfff ? u + 0x2000 : u >= 0xe000 ? u - 0x800 : u;
}

/**
 * The smallest string greater than every string that starts with `prefix`, so that
 * "starts with prefix" is the range [prefix, end). Undefined when there is no such string
 * (the prefix is empty or all U+10FFFF): the range is then unbounded above.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (cps.length > 0) {
    const last = cps.pop() ?? 0;
    if (last < 0x10ffff) {
      // Skip the surrogate block: no well-formed string holds those code points.
      cps.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...cps);
    }
  }
  return undefined;
}
