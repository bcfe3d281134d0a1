import { Command } from 'commander';
import type { AgentFlags } from '../../targets/agent.js';
import { defaultDataDir } from '../../targets/settings.js';
import { runDaemon } from '../daemon.js';
import { withAgentFlags, withJson } from '../flags.js';
import { emit, withAgent } from '../run.js';
import { installCommand } from './install.js';

export function agentCommand(): Command {
  const cmd = new Command('agent').description("run and manage this host's agent");

  cmd
    .command('start')
    .description('run the agent in the foreground (what the systemd unit runs)')
    .option('--data-dir <dir>', 'agent data directory made by `meshctl init --join`')
    .option(
      '--metrics-bind <addr:port>',
      "serve Prometheus metrics of this host's sidecars on http://ADDR:PORT/metrics",
    )
    .option(
      '--access-logs <dir|stdout>',
      'JSON access logs for every sidecar: one file per service in DIR, or stdout (per service: --meta access-log=on)',
    )
    .option(
      '--enable-exec-checks',
      'run exec health checks, from definition files in the root-owned services directory only (never from `meshctl register`)',
    )
    .action(
      async (opts: { dataDir?: string; metricsBind?: string; accessLogs?: string; enableExecChecks?: boolean }) => {
        const { Agent } = await import('../../agent/agent.js');
        await runDaemon({
          start: () =>
            Agent.start({
              dataDir: opts.dataDir ?? defaultDataDir('agent'),
              ...(opts.metricsBind ? { metricsBind: opts.metricsBind } : {}),
              ...(opts.accessLogs ? { accessLogs: opts.accessLogs } : {}),
              ...(opts.enableExecChecks ? { enableExecChecks: true } : {}),
            }),
          announce: (agent) =>
            process.stderr.write(
              `meshctl agent running as node ${agent.config.nodeName} (socket ${agent.config.socketPath})\n`,
            ),
          close: (agent) => agent.stop(),
          stopRequested: (agent) => agent.stopRequested(),
          onHup: (agent) =>
            void agent.reload().catch((e: unknown) => agent.log.error({ err: String(e) }, 'reload failed')),
        });
      },
    );

  // Nothing the agent or its sidecars do needs root (ports above 1024, files of its own).
  cmd.addCommand(
    installCommand('agent', {
      user: 'meshctl',
      userHelp: 'user the agent runs as (must exist; its data directory is given to it)',
    }),
  );

  withJson(
    withAgentFlags(
      cmd.command('leave').description('deregister everything of this host from the mesh and stop the agent'),
    ),
  ).action(async (opts: AgentFlags & { json?: boolean }) => {
    const res = await withAgent(opts, (c) => c.leave());
    emit(opts, res, () => ['This host left the mesh: its services are deregistered and the agent is stopping.']);
  });

  withJson(
    withAgentFlags(cmd.command('info').description("show this agent's node, registry link and certificate")),
  ).action(async (opts: AgentFlags & { json?: boolean }) => {
    const self = await withAgent(opts, (c) => c.self());
    emit(opts, self, (s) => {
      const sync = s.sync as { registry: string; reachable: boolean; lastSyncAt?: string; lastError?: string };
      return [
        `node           ${String(s.node)} (${String(s.advertise)})`,
        `trust domain   ${String(s.trustDomain)}`,
        `registry       ${sync.registry} — ${sync.reachable ? 'reachable' : 'unreachable'}${sync.lastSyncAt ? `, last sync ${sync.lastSyncAt}` : ''}`,
        ...(sync.lastError ? [`last error     ${sync.lastError}`] : []),
        `node cert      expires ${String(s.nodeCertNotAfter)}`,
        `services       ${String(s.services)} (definitions in ${String(s.servicesDir)})`,
      ];
    });
  });
  return cmd;
}
