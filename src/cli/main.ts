/**
 * The CLI entry point and its one top-level catch: MeshErrors print a message and a hint
 * and exit with their code; anything else is a bug, printed as such. Under --json the error is
 * JSON too, on stderr (`{"error": {"code", "message", "hint"}}`), so stdout holds only answers.
 */
import { CommanderError } from 'commander';
import { MeshError, exitCodeFor } from '../errors/index.js';
import { buildProgram } from './program.js';
import { dropOutputWhenReaderGone } from './stdio.js';

const USAGE_EXIT = 64;

async function main(argv: string[], json: boolean): Promise<number> {
  try {
    await buildProgram({ jsonErrors: json }).parseAsync(argv);
    // A command that finished but has an answer to signal (intention check's 2, a demo that failed).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return report(e, json);
  }
}

/** --json anywhere before a `--` (commander takes it at any position). */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

function report(e: unknown, json: boolean): number {
  if (e instanceof CommanderError) {
    if (
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.version' ||
      e.code === 'commander.help' ||
      e.exitCode === 0
    )
      return 0;
    // Without --json commander has already printed its message; with it, it printed nothing.
    if (json) {
      const usage = new MeshError('MESH_ERR_USAGE', e.message.replace(/^error: /, ''));
      process.stderr.write(`${JSON.stringify({ error: usage.toJSON() })}\n`);
    }
    return USAGE_EXIT;
  }
  if (e instanceof MeshError) {
    process.stderr.write(
      json ? `${JSON.stringify({ error: e.toJSON() })}\n` : `Error: ${e.message}\n  hint: ${e.hint}\n  (${e.code})\n`,
    );
    return exitCodeFor(e);
  }
  const err = e instanceof Error ? e : new Error(String(e));
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: new MeshError('MESH_ERR_INTERNAL', err.message).toJSON() })}\n`);
  } else {
    process.stderr.write(`Internal error: ${err.message}\n  This is a bug in meshctl; please report it.\n`);
  }
  if (process.env.MESHCTL_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
  return exitCodeFor(e);
}

const json = wantsJson(process.argv.slice(2));
dropOutputWhenReaderGone();
process.on('unhandledRejection', (reason) => {
  process.exitCode = report(reason, json);
});

const code = await main(process.argv, json);
// Long-running commands (registry start) resolve only when stopped; exit when done so
// keep-alive sockets of one-shot commands do not hold the process open.
process.exit(code);
