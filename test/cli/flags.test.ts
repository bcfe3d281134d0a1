import { describe, expect, it } from 'vitest';
import { Command, InvalidArgumentError } from 'commander';
import { durationOption, parseDurationFlag } from '../../src/cli/flags.js';

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

describe('durationOption', () => {
  const program = () =>
    new Command('x')
      .exitOverride()
      .configureOutput({ writeErr: () => undefined })
      .addOption(
        durationOption('--ttl <duration>', 'how long', {
          example: '15s',
          minMs: 2000,
          defaultMs: 86_400_000,
          unit: 's',
        }),
      )
      .addOption(durationOption('--every <duration>', 'how often', { example: '1s', defaultMs: 1500 }));

  it('shows its default as a duration in --help, never as a bare number', () => {
    const help = program().helpInformation();
    expect(help).toContain('(default: 24h)');
    expect(help).toContain('(default: 2s)');
    expect(help).not.toMatch(/default: \d+\)/);
  });

  it('gives the command seconds or milliseconds, as the flag asks', () => {
    expect(program().parse(['node', 'x'], { from: 'node' }).opts()).toEqual({ ttl: 86_400, every: 1500 });
    const given = program().parse(['node', 'x', '--ttl', '1m30s', '--every', '250ms'], { from: 'node' }).opts();
    expect(given).toEqual({ ttl: 90, every: 250 });
  });

  it('refuses a bare number with the example', () => {
    expect(() => program().parse(['node', 'x', '--every', '1000'], { from: 'node' })).toThrow(
      "'1000' is not a duration, e.g. 1s.",
    );
  });
});
