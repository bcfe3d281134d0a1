/**
 * The CLI entry point and its one top-level catch: MeshErrors print a message and a hint
 * and exit with their code; anything else is a bug, printed as such.
 */
import { CommanderError } from 'commander';
import { MeshError, exitCodeFor } from '../errors/index.js';
import { buildProgram } from './program.js';
import { dropOutputWhenReaderGone } from './stdio.js';

const USAGE_EXIT = 64;

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    return report(e);
  }
}

function report(e: unknown): number {
  if (e instanceof CommanderError) {
    // commander has already printed its message (or the help/version text).
    if (
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.version' ||
      e.code === 'commander.help' ||
      e.exitCode === 0
    )
      return 0;
    return USAGE_EXIT;
  }
  if (e instanceof MeshError) {
    process.stderr.write(`Error: ${e.message}\n  hint: ${e.hint}\n  (${e.code})\n`);
    return exitCodeFor(e);
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`Internal error: ${err.message}\n  This is a bug in meshctl; please report it.\n`);
  if (process.env.MESHCTL_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
  return exitCodeFor(e);
}

dropOutputWhenReaderGone();
process.on('unhandledRejection', (reason) => {
  process.exitCode = report(reason);
});

const code = await main(process.argv);
// Long-running commands (registry start) resolve only when stopped; exit when done so
// keep-alive sockets of one-shot commands do not hold the process open.
process.exit(code);
