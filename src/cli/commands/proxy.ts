import { Command, InvalidArgumentError, Option } from 'commander';
import { durationOption } from '../flags.js';
// Only the limit is loaded with the CLI; the proxy itself (http-proxy, histograms, TLS) loads when it runs.
import { DEFAULT_DRAIN_SECONDS, MAX_DRAIN_SECONDS } from '../../proxy/limits.js';

function parseDrainSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > MAX_DRAIN_SECONDS) {
    throw new InvalidArgumentError(
      `'${value}' is not a valid drain time: use a whole number of seconds from 0 to ${MAX_DRAIN_SECONDS}.`,
    );
  }
  return n;
}

interface RunOpts {
  adminSocket: string;
  snapshot?: string;
  drain?: number;
  drainSeconds?: number;
  agentSocket?: string;
}

export function proxyCommand(): Command {
  const cmd = new Command('proxy').description('the sidecar proxy (the agent launches one per local service)');
  cmd
    .command('run')
    .description('run one proxy in the foreground until SIGTERM or POST /shutdown on its admin socket')
    .requiredOption(
      '--admin-socket <path>',
      'unix socket for the admin endpoint (snapshots, stats, health, shutdown); made 0600',
    )
    .option(
      '--snapshot <file>',
      "start serving this snapshot JSON (the agent's cached copy) without waiting for a push",
    )
    .addOption(
      // The default is the proxy's DEFAULT_DRAIN_MS, named in limits.ts so help needs no proxy code.
      durationOption(
        '--drain <duration>',
        `how long requests in flight may finish on shutdown; no new connections are taken meanwhile (default: ${DEFAULT_DRAIN_SECONDS}s)`,
        {
          example: '30s',
          maxMs: MAX_DRAIN_SECONDS * 1000,
          range: `0s to ${MAX_DRAIN_SECONDS}s`,
        },
      ),
    )
    .option(
      '--agent-socket <path>',
      "the agent's admin socket: on shutdown the proxy asks the agent to withdraw it from callers first (the agent gives it)",
    )
    // The older spelling, in whole seconds; kept so scripts that pass it still run.
    .addOption(new Option('--drain-seconds <n>').argParser(parseDrainSeconds).hideHelp().conflicts('drain'))
    .action(async (opts: RunOpts) => {
      const { setProxyV8Flags } = await import('../../proxy/process-flags.js');
      setProxyV8Flags();
      const { runProxy } = await import('../../proxy/main.js');
      const running = await runProxy({
        adminSocket: opts.adminSocket,
        ...(opts.snapshot !== undefined ? { snapshotFile: opts.snapshot } : {}),
        ...(opts.drainSeconds !== undefined ? { drainMs: opts.drainSeconds * 1000 } : {}),
        ...(opts.drain !== undefined ? { drainMs: opts.drain } : {}),
        ...(opts.agentSocket !== undefined ? { agentSocket: opts.agentSocket } : {}),
      });
      if (running.startupProblem) {
        process.stderr.write(`warning: ${running.startupProblem.message}\n  hint: ${running.startupProblem.hint}\n`);
      }
      const version = running.proxy.version;
      process.stderr.write(
        `meshctl proxy running (admin socket ${opts.adminSocket}, snapshot ${version === undefined ? 'none yet' : `version ${version}`})\n`,
      );
      await running.closed;
    });
  return cmd;
}
