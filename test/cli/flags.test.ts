import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { parseDurationFlag } from '../../src/cli/flags.js';

describe('parseDurationFlag', () => {
  const leaseTtl = parseDurationFlag({ example: '15s', minMs: 2000, maxMs: 3_600_000, range: '2s to 1h' });

  it('gives milliseconds for a duration with a unit, bounds included', () => {
    expect(leaseTtl('15s')).toBe(15_000);
    expect(leaseTtl('1m30s')).toBe(90_000);
    expect(leaseTtl('2s')).toBe(2000);
    expect(leaseTtl('1h')).toBe(3_600_000);
  });

  it('refuses a value that is not a duration, with an example', () => {
    for (const bad of ['soon', '15', '', '10x']) {
      expect(() => leaseTtl(bad)).toThrow(InvalidArgumentError);
      expect(() => leaseTtl(bad)).toThrow(`'${bad}' is not a duration, e.g. 15s.`);
    }
  });

  it('refuses a duration out of range, naming the range', () => {
    expect(() => leaseTtl('1500ms')).toThrow("'1500ms' is out of range: use 2s to 1h.");
    expect(() => leaseTtl('2h')).toThrow("'2h' is out of range: use 2s to 1h.");
  });

  it('has no bounds unless given', () => {
    expect(parseDurationFlag({ example: '10s' })('7d')).toBe(604_800_000);
  });
});
