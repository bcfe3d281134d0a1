/**
 * The wording of definition-file problems. zod's defaults talk about types; these talk about
 * what the user wrote, and every problem carries a path into the file's own structure
 * (snake_case keys, list indexes) so parse.ts can point at the line the user has to fix.
 */
import type { z } from 'zod';

export type PathSegment = string | number;

export interface FormatIssue {
  /** Where in the file, e.g. ['service', 'upstreams', 1, 'local_port']. */
  path: PathSegment[];
  message: string;
  /** 'key' when the key itself is wrong (unknown key), so the locator points at the key, not its value. */
  at?: 'key';
}

/** A written value, named as the user would recognise it. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'empty (null)';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

function bound(word: 'at most' | 'at least', origin: string, n: number | bigint, inclusive = true): string {
  const limit = inclusive ? n : word === 'at most' ? Number(n) - 1 : Number(n) + 1;
  if (origin === 'array')
    return word === 'at most' ? `may have at most ${limit} items` : `needs at least ${limit} items`;
  if (origin === 'string')
    return limit === 1 && word === 'at least' ? 'must not be empty' : `must be ${word} ${limit} characters long`;
  return `must be ${word} ${limit}`;
}

/** Per-parse error map; messages set on a schema (like the name rule) still win. */
export const fileErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'is required';
      if (iss.expected === 'string' && (typeof iss.input === 'number' || typeof iss.input === 'boolean')) {
        return `must be a string, not ${describe(iss.input)}; quote it: "${String(iss.input)}"`;
      }
      return `must be ${EXPECTED[iss.expected] ?? iss.expected}, not ${describe(iss.input)}`;
    }
    case 'too_big':
      return bound('at most', iss.origin, iss.maximum, iss.inclusive);
    case 'too_small':
      return bound('at least', iss.origin, iss.minimum, iss.inclusive);
    case 'invalid_value':
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}, not ${describe(iss.input)}`;
    default:
      return undefined;
  }
};

/** "did you mean" for a camelCase spelling of a snake_case key the format knows. */
function unknownKeyMessage(key: string, knownKeys: ReadonlySet<string>): string {
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return snake !== key && knownKeys.has(snake)
    ? `unknown key '${key}' (did you mean '${snake}'?)`
    : `unknown key '${key}'`;
}

/** zod issues → file issues: one issue per unknown key, pointing at that key. */
export function normalizeIssues(issues: readonly z.core.$ZodIssue[], knownKeys: ReadonlySet<string>): FormatIssue[] {
  const out: FormatIssue[] = [];
  for (const iss of issues) {
    const path = iss.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys)
        out.push({ path: [...path, key], message: unknownKeyMessage(key, knownKeys), at: 'key' });
    } else if (iss.code === 'custom' && iss.params?.at === 'key') {
      out.push({ path, message: iss.message, at: 'key' });
    } else {
      out.push({ path, message: iss.message });
    }
  }
  return out;
}

/** File issues back into a zod refinement (for a value parsed by a nested schema). */
export function addIssues(ctx: z.core.$RefinementCtx, issues: FormatIssue[]): void {
  for (const i of issues)
    ctx.addIssue({ code: 'custom', message: i.message, path: i.path, ...(i.at && { params: { at: i.at } }) });
}

/** A path as the user reads it: `services[1].upstreams[0].local_port`. */
export function formatPath(path: readonly PathSegment[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}
