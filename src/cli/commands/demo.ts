import { Command, InvalidArgumentError } from 'commander';
import { durationOption } from '../flags.js';
import { emit } from '../run.js';
import { bothEndsAreTerminal } from '../stdio.js';

interface DemoOpts {
  headless?: boolean;
  duration: number;
  dataDir?: string;
  rps: number;
  json?: boolean;
}

function rpsArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1000)
    throw new InvalidArgumentError(`'${value}' is not a rate: use 1 to 1000.`);
  return n;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'run a whole mesh on this machine: a registry, three agents, api ×2 and web, traffic, and the dashboard',
    )
    .option(
      '--headless',
      'no dashboard: run for --duration and print a summary (exit 0 when the mesh worked); the default without a terminal',
    )
    .addOption(
      durationOption('--duration <duration>', 'with --headless (or without a terminal): how long to send traffic', {
        example: '10s or 2m',
        defaultMs: 10_000,
      }),
    )
    .option('--rps <n>', 'requests per second into web', rpsArg, 20)
    .option('--data-dir <dir>', 'where the demo keeps its state and logs (default: a new temp dir)')
    .option('--json', 'with --headless: print the summary as JSON')
    .action(async (opts: DemoOpts) => {
      // Without a terminal for the dashboard the demo still shows the mesh working, as the summary.
      const terminal = bothEndsAreTerminal();
      if (!opts.headless && !terminal) {
        process.stderr.write(
          `no terminal for the dashboard: running headless for ${opts.duration / 1000}s (--duration sets how long)\n`,
        );
      }
      const { runDemoCommand } = await import('../../demo/command.js');
      const summary = await runDemoCommand({ ...opts, headless: opts.headless === true || !terminal });
      if (!summary) return;
      const { lines, ...data } = summary;
      emit(opts, data, () => lines);
      if (!summary.worked) process.exitCode = 1;
    });
}
