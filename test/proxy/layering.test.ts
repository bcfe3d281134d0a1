/** The proxy's sides stay apart: outbound and inbound never import each other; shared code lives in http/. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROXY = fileURLToPath(new URL('../../src/proxy/', import.meta.url));

function files(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((n) => files(join(path, n)));
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'([^']+)'/g)].map((m) => m[1]!);
}

function offending(dirs: string[], forbidden: RegExp): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of dirs.flatMap((d) => files(join(PROXY, d))).filter((f) => f.endsWith('.ts'))) {
    const bad = importsOf(f).filter((i) => forbidden.test(i));
    if (bad.length > 0) out[f.slice(PROXY.length)] = bad;
  }
  return out;
}

describe('proxy layering', () => {
  it('the outbound side imports nothing from the inbound side', () => {
    expect(files(join(PROXY, 'outbound')).length).toBeGreaterThan(5);
    expect(offending(['outbound'], /inbound/)).toEqual({});
  });

  it('the inbound side imports nothing from the outbound side', () => {
    const inbound = readdirSync(PROXY).filter((n) => n.startsWith('inbound'));
    expect(inbound.length).toBeGreaterThan(0);
    expect(offending(inbound, /outbound/)).toEqual({});
  });

  it('shared HTTP code imports neither side', () => {
    expect(offending(['http'], /inbound|outbound/)).toEqual({});
  });
});
