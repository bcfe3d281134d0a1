import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isReasonKind, meshReason, peerReasonKind, REASONS, reasonKind, reasonSpec } from '../../src/errors/reasons.js';

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') || p.endsWith('.tsx') ? [p] : [];
  });
}

describe('mesh reasons', () => {
  const doc = readFileSync(new URL('../../docs/REASONS.md', import.meta.url), 'utf8');

  it('are all documented in docs/REASONS.md, with status, sender, failover and L4', () => {
    for (const [kind, spec] of Object.entries(REASONS)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${kind}\` |`));
      expect(row, kind).toBeDefined();
      expect(row).toContain(`| ${spec.status} | ${spec.sender} | ${yesNo(spec.failover)} | ${yesNo(spec.l4)} |`);
    }
  });

  it('documents no reason that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(REASONS).sort());
  });

  it('are built only by the reasons module (no reason text written by hand elsewhere in src/)', () => {
    const src = fileURLToDir('../../src/');
    const kinds = Object.keys(REASONS).join('|');
    // A quote or backtick, a kind, then a space: the start of a hand-made `kind detail` string.
    const handMade = new RegExp(`['"\`](?:${kinds}) `);
    const offenders = sources(src)
      .filter((f) => !f.endsWith(join('errors', 'reasons.ts')))
      .filter((f) => codeLines(readFileSync(f, 'utf8')).some((l) => handMade.test(l)));
    expect(offenders).toEqual([]);
  });

  it('are the kind and a detail; the kind is the first word', () => {
    expect(meshReason('no-healthy-endpoints', 'api')).toBe('no-healthy-endpoints api');
    expect(meshReason('intention-deny', 'web -> api')).toBe('intention-deny web -> api');
    expect(meshReason('unsupported-upgrade')).toBe('unsupported-upgrade');
    expect(reasonKind('app-unavailable api')).toBe('app-unavailable');
    expect(reasonKind('unsupported-upgrade')).toBe('unsupported-upgrade');
    expect(reasonSpec('app-unavailable api')).toEqual({ status: 502, sender: 'inbound', failover: true, l4: true });
    expect(reasonSpec('made-up x')).toBeUndefined();
    expect(isReasonKind('toString')).toBe(false);
  });

  it("count a peer's reason by its kind only when an inbound sends that kind", () => {
    expect(peerReasonKind('intention-deny web -> api')).toBe('intention-deny');
    expect(peerReasonKind('app-unavailable api')).toBe('app-unavailable');
    expect(peerReasonKind('unsupported-upgrade')).toBe('unsupported-upgrade');
    // Only outbounds send these: a peer claiming one is not believed.
    expect(peerReasonKind('no-healthy-endpoints api')).toBe('other');
    expect(peerReasonKind('made-up-by-someone x')).toBe('other');
    expect(peerReasonKind('__proto__')).toBe('other');
  });

  it('allow failover only where nothing reached an app', () => {
    const failover = Object.entries(REASONS)
      .filter(([, s]) => s.failover)
      .map(([k]) => k);
    expect(failover.sort()).toEqual(['app-unavailable', 'connect-failure']);
  });
});

/** Lines that are code, not comments (a doc comment may quote a reason). */
function codeLines(text: string): string[] {
  return text.split('\n').filter((l) => !/^\s*(\*|\/\*|\/\/)/.test(l));
}

function fileURLToDir(rel: string): string {
  return new URL(rel, import.meta.url).pathname;
}
