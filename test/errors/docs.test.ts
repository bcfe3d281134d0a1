import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ERRORS, MeshError, exitCodeFor } from '../../src/errors/index.js';

describe('error codes', () => {
  const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8');

  it('are all documented in docs/ERRORS.md, with their HTTP status and exit code', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      expect(row, code).toBeDefined();
      expect(row).toContain(`| ${spec.http} | ${spec.exit} |`);
    }
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `(MESH_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERRORS).sort());
  });

  it('map to exit codes, with a hint by default', () => {
    const e = new MeshError('MESH_ERR_NOT_FOUND', 'no such thing');
    expect(exitCodeFor(e)).toBe(66);
    expect(e.hint.length).toBeGreaterThan(0);
    expect(exitCodeFor(new Error('boom'))).toBe(70);
    expect(e.toJSON()).toEqual({ code: 'MESH_ERR_NOT_FOUND', message: 'no such thing', hint: e.hint });
  });
});
