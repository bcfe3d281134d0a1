import { Command } from 'commander';
import { agentFlags, durationOption, registryFlags, withAgentFlags, withJson, withRegistryFlags } from '../flags.js';
import { bothEndsAreTerminal } from '../stdio.js';
import type { RegistryFlags } from '../../targets/registry.js';
import type { AgentFlags } from '../../targets/agent.js';
import type { StatusMode } from '../../ui/run-dashboard.js';

type Opts = RegistryFlags & AgentFlags & { json?: boolean; once?: boolean; interval: number };

export function statusCommand(): Command {
  const cmd = new Command('status').description(
    "live dashboard of the mesh: services, traffic, nodes, intentions (from the registry, or through this host's agent)",
  );
  withAgentFlags(withJson(withRegistryFlags(cmd)))
    .option('--once', 'print one plain frame and exit (the default when not on a terminal)')
    .addOption(
      durationOption('--interval <duration>', 'how often the live dashboard refreshes (100ms-1m)', {
        example: '1s or 500ms',
        minMs: 100,
        maxMs: 60_000,
        range: '100ms to 1m',
        defaultMs: 1000,
      }),
    )
    .action(async (opts: Opts) => {
      const mode: StatusMode = opts.json
        ? { kind: 'json' }
        : opts.once || !bothEndsAreTerminal()
          ? { kind: 'once', columns: process.stdout.columns || 80 }
          : { kind: 'live', intervalMs: opts.interval };
      if (mode.kind === 'live') (await import('../../ui/live-terminal.js')).letInkDrawLive();
      // Loaded on use: Ink and React are heavy, and every other command should start fast.
      const { openMeshSource } = await import('../../ui/data/open-source.js');
      const { showStatus } = await import('../../ui/run-dashboard.js');
      const source = await openMeshSource({ ...registryFlags(opts), ...agentFlags(opts) });
      try {
        await showStatus(source, mode);
      } finally {
        source.close();
      }
    });
  return cmd;
}
