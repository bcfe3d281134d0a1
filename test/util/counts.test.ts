import { describe, expect, it } from 'vitest';
import { addCounts, countsSince } from '../../src/util/counts.js';

describe('counts by name', () => {
  it('the difference keeps only the names that grew; without a base, every positive count', () => {
    expect(countsSince({ a: 5, b: 2, c: 0 }, { a: 3, b: 2 })).toEqual({ a: 2 });
    expect(countsSince({ a: 1, new: 4 }, { a: 1 })).toEqual({ new: 4 });
    expect(countsSince({ a: 1, z: 0 })).toEqual({ a: 1 });
  });

  it('the sum adds name by name into the first', () => {
    const into: Record<string, number> = { a: 1 };
    addCounts(into, { a: 2, b: 3 });
    expect(into).toEqual({ a: 3, b: 3 });
  });
});
