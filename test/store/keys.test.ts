import { describe, expect, it } from 'vitest';
import { compareKeys, prefixEnd } from '../../src/store/keys.js';

// Code points around every boundary where UTF-16 and UTF-8 order could part ways.
const ALPHABET = [
  '\u0000',
  'a',
  'b',
  '\u007f',
  '\u0080',
  '\u07ff',
  '\u0800',
  '\ud7ff',
  '\ue000',
  '\uffef',
  '\uffff',
  '\u{10000}',
  '\u{1f600}',
  '\u{10fffe}',
  '\u{10ffff}',
];

function randomStrings(count: number, seed: number): string[] {
  let x = seed;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x;
  };
  return Array.from({ length: count }, () =>
    Array.from({ length: next() % 5 }, () => ALPHABET[next() % ALPHABET.length]).join(''),
  );
}

const bytes = (a: string, b: string): number =>
  Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));

describe('store key order', () => {
  it('compareKeys orders strings exactly as their UTF-8 bytes', () => {
    const strings = randomStrings(400, 7);
    for (const a of strings)
      for (const b of strings.slice(0, 60)) expect([a, b, Math.sign(compareKeys(a, b))]).toEqual([a, b, bytes(a, b)]);
  });

  it('prefixEnd bounds exactly the strings that start with the prefix', () => {
    const prefixes = [...randomStrings(80, 11), '\u{10ffff}', '\u{10ffff}\u{10ffff}', 'a\u{10ffff}', '\ud7ff', ''];
    const keys = randomStrings(300, 13);
    for (const p of prefixes) {
      const end = prefixEnd(p);
      for (const k of [...keys, p, p + 'x']) {
        const inRange = compareKeys(k, p) >= 0 && (end === undefined || compareKeys(k, end) < 0);
        expect([p, k, inRange]).toEqual([p, k, k.startsWith(p)]);
      }
    }
    expect(prefixEnd('')).toBeUndefined();
    expect(prefixEnd('\u{10ffff}')).toBeUndefined();
    expect(prefixEnd('a\u{10ffff}')).toBe('b');
    expect(prefixEnd('\ud7ff')).toBe('\ue000');
  });
});
