import { describe, expect, it } from 'vitest';
import { FilterSyntaxError, matchesFilter, parseFilter } from '../../src/api/filter.js';

const v1 = { meta: { version: 'v1', zone: 'a' }, tags: ['primary'] };
const v2 = { meta: { version: 'v2' }, tags: ['canary', 'blue'] };
const match = (f: string) => [v1, v2].map((s) => matchesFilter(parseFilter(f), s));

function syntax(f: string): string {
  try {
    parseFilter(f);
  } catch (e) {
    if (e instanceof FilterSyntaxError) return e.message;
    throw e;
  }
  return 'parsed';
}

describe('subset filters', () => {
  it('match meta with == and !=, tags with contains and not contains', () => {
    expect(match('Service.Meta.version == v1')).toEqual([true, false]);
    expect(match('Service.Meta.version != v1')).toEqual([false, true]);
    expect(match('Service.Meta.zone != a')).toEqual([false, true]);
    expect(match('Service.Tags contains canary')).toEqual([false, true]);
    expect(match('Service.Tags not contains canary')).toEqual([true, false]);
    expect(match('Service.Meta.version=="v2"')).toEqual([false, true]);
    expect(match("Service.Meta.version == 'v 1'")).toEqual([false, false]);
  });

  it('join with and, or, not and parentheses; not binds tightest, then and, then or', () => {
    expect(match('Service.Meta.version == v1 or Service.Tags contains canary')).toEqual([true, true]);
    expect(match('Service.Meta.version == v2 and Service.Tags contains blue')).toEqual([false, true]);
    expect(match('not Service.Meta.version == v1')).toEqual([false, true]);
    expect(match('Service.Meta.version == v1 or Service.Meta.version == v2 and Service.Tags contains nope')).toEqual([
      true,
      false,
    ]);
    expect(match('(Service.Meta.version == v1 or Service.Meta.version == v2) and Service.Tags contains blue')).toEqual([
      false,
      true,
    ]);
    expect(match('not (Service.Tags contains blue or Service.Tags contains primary)')).toEqual([false, false]);
  });

  it('name the column where a filter stops parsing', () => {
    expect(syntax('')).toBe('column 1: the filter is empty');
    expect(syntax('Service.Meta.version = v1')).toBe(
      'column 22: expected "==" or "!=" after Service.Meta.version, found "="',
    );
    expect(syntax('Service.Meta.version ==')).toBe('column 24: expected a value after "==", found the end');
    expect(syntax('Service.Name == api')).toBe(
      'column 1: unknown selector "Service.Name": use Service.Meta.KEY or Service.Tags',
    );
    expect(syntax('Service.Tags has x')).toBe('column 14: expected "contains" after Service.Tags, found "has"');
    expect(syntax('(Service.Tags contains x')).toBe('column 25: expected ")", found the end');
    expect(syntax('Service.Tags contains x y')).toBe('column 25: expected "and", "or" or the end, found "y"');
    expect(syntax('Service.Meta.v == "x')).toBe('column 19: unterminated string (no closing ")');
    expect(syntax('Service.Meta.v == x & y')).toBe('column 21: unexpected character "&"');
    expect(syntax('x'.repeat(2000))).toMatch(/^column 1025: a filter is at most 1024 characters/);
  });
});
