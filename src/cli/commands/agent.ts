import { Command } from 'commander';
import { agentClientFor, type AgentFlags } from '../../targets/agent.js';
import { defaultDataDir } from '../../targets/settings.js';
import { runDaemon } from '../daemon.js';
import { printJson, printLines } from '../output.js';

export function withAgentFlags(cmd: Command): Command {
  return cmd
    .option('--socket <path>', 'agent admin socket (default: from the agent config, or MESHCTL_AGENT_SOCKET)')
    .option(
      '--data-dir <dir>',
      'agent data directory (default: /var/lib/meshctl/agent as root, else ~/.local/share/meshctl/agent)',
    );
}

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
    .action(async (opts: { dataDir?: string; metricsBind?: string; accessLogs?: string }) => {
      const { Agent } = await import('../../agent/agent.js');
      await runDaemon({
        start: () =>
          Agent.start({
            dataDir: opts.dataDir ?? defaultDataDir('agent'),
            ...(opts.metricsBind ? { metricsBind: opts.metricsBind } : {}),
            ...(opts.accessLogs ? { accessLogs: opts.accessLogs } : {}),
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
    });

  cmd
    .command('install')
    .description('install and enable the systemd unit for the agent')
    .option('--now', 'start it now as well')
    .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
    .option('--data-dir <dir>', 'agent data directory')
    // The agent binds proxy ports and runs exec checks; it runs as root unless told otherwise.
    .option('--user <user>', 'user the agent runs as', 'root')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: { now?: boolean; unitDir: string; dataDir?: string; user: string; json?: boolean }) => {
      const { installService } = await import('../../systemd/cli-install.js');
      const res = await installService('agent', { ...opts, dataDir: opts.dataDir ?? defaultDataDir('agent') });
      if (opts.json) return printJson(res);
      printLines(res.lines);
    });

  withAgentFlags(
    cmd.command('leave').description('deregister everything of this host from the mesh and stop the agent'),
  )
    .option('--json', 'print JSON instead of text')
    .action(async (opts: AgentFlags & { json?: boolean }) => {
      const client = await agentClientFor(opts);
      try {
        const res = await client.leave();
        if (opts.json) return printJson(res);
        printLines(['This host left the mesh: its services are deregistered and the agent is stopping.']);
      } finally {
        client.close();
      }
    });

  withAgentFlags(cmd.command('info').description("show this agent's node, registry link and certificate"))
    .option('--json', 'print JSON instead of text')
    .action(async (opts: AgentFlags & { json?: boolean }) => {
      const client = await agentClientFor(opts);
      try {
        const self = await client.self();
        if (opts.json) return printJson(self);
        const sync = self.sync as { registry: string; reachable: boolean; lastSyncAt?: string; lastError?: string };
        printLines([
          `node           ${String(self.node)} (${String(self.advertise)})`,
          `trust domain   ${String(self.trustDomain)}`,
          `registry       ${sync.registry} — ${sync.reachable ? 'reachable' : 'unreachable'}${sync.lastSyncAt ? `, last sync ${sync.lastSyncAt}` : ''}`,
          ...(sync.lastError ? [`last error     ${sync.lastError}`] : []),
          `node cert      expires ${String(self.nodeCertNotAfter)}`,
          `services       ${String(self.services)} (definitions in ${String(self.servicesDir)})`,
        ]);
      } finally {
        client.close();
      }
    });
  return cmd;
}
