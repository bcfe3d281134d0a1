import { Command, InvalidArgumentError } from 'commander';
import { registryFlags, withJson, withRegistryFlags } from '../flags.js';
import { withAgentFlags } from './agent.js';
import { bothEndsAreTerminal } from '../stdio.js';
import type { RegistryFlags } from '../../targets/registry.js';
import type { AgentFlags } from '../../targets/agent.js';
import type { StatusMode } from '../../ui/run-dashboard.js';

type Opts = RegistryFlags & AgentFlags & { json?: boolean; once?: boolean; interval: number };

const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 60_000;

function parseInterval(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < MIN_INTERVAL_MS || n > MAX_INTERVAL_MS) {
    throw new InvalidArgumentError(
      `'${value}' is not a valid interval: use milliseconds from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS}.`,
    );
  }
  return n;
}

export function statusCommand(): Command {
  const cmd = new Command('status').description(
    "live dashboard of the mesh: services, traffic, nodes, intentions (from the registry, or through this host's agent)",
  );
  withAgentFlags(withJson(withRegistryFlags(cmd)))
    .option('--once', 'print one plain frame and exit (the default when not on a terminal)')
    .option('--interval <ms>', 'refresh interval in milliseconds', parseInterval, 1000)
    .action(async (opts: Opts) => {
      const agent: AgentFlags = {};
      if (opts.socket !== undefined) agent.socket = opts.socket;
      if (opts.dataDir !== undefined) agent.dataDir = opts.dataDir;
      const mode: StatusMode = opts.json
        ? { kind: 'json' }
        : opts.once || !bothEndsAreTerminal()
          ? { kind: 'once', columns: process.stdout.columns || 80 }
          : { kind: 'live', intervalMs: opts.interval };
      if (mode.kind === 'live') (await import('../../ui/live-terminal.js')).letInkDrawLive();
      // Loaded on use: Ink and React are heavy, and every other command should start fast.
      const { openMeshSource } = await import('../../ui/data/open-source.js');
      const { showStatus } = await import('../../ui/run-dashboard.js');
      const source = await openMeshSource({ ...registryFlags(opts), ...agent });
      try {
        await showStatus(source, mode);
      } finally {
        source.close();
      }
    });
  return cmd;
}
