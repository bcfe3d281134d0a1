/**
 * `--help` of every command, pinned in golden files: the flags, their words and their defaults
 * (durations as 10s/24h, never bare numbers). UPDATE_GOLDEN=1 rewrites them after a change.
 */
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { expectGolden } from '../helpers/golden.js';

function everyCommand(c: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  return [{ path, cmd: c }, ...c.commands.flatMap((sub) => everyCommand(sub, [...path, sub.name()]))];
}

describe('meshctl --help', () => {
  const commands = everyCommand(buildProgram());

  it.each(commands.map((c) => [c.path.join(' ') || 'meshctl', c] as const))('%s', async (_name, { path, cmd }) => {
    const help = cmd.helpInformation({ error: false });
    // A length of time is a duration flag, and its default shows as one (10s, 24h), never as a bare number.
    for (const o of cmd.options.filter(
      (o) => o.defaultValue !== undefined && /ttl|interval|timeout|duration|drain/.test(o.long ?? ''),
    )) {
      expect(o.flags, o.flags).toContain('<duration>');
      expect(o.defaultValueDescription ?? '', o.flags).toMatch(/^(\d+(ms|s|m|h|d))+$/);
    }
    await expectGolden(`help/${path.join('-') || 'meshctl'}`, help);
  });
});
