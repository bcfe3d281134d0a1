import { Command } from 'commander';
import { agentClientFor, type AgentFlags } from '../../targets/agent.js';
import { printJson, printLines } from '../output.js';
import { withAgentFlags } from './agent.js';

const VERBS = { pass: 'passing', warn: 'warning', fail: 'critical' } as const;

export function checkCommand(): Command {
  const cmd = new Command('check').description('report the state of a TTL check');
  for (const [verb, status] of Object.entries(VERBS)) {
    withAgentFlags(
      cmd
        .command(verb)
        .description(`mark TTL check ID ${status}`)
        .argument('<id>', 'check id (see `meshctl services`)')
        .option('--note <text>', 'output to store with the state', ''),
    )
      .option('--json', 'print JSON instead of text')
      .action(async (id: string, opts: AgentFlags & { note: string; json?: boolean }) => {
        const client = await agentClientFor(opts);
        try {
          const res = await client.ttlUpdate(id, status, opts.note);
          if (opts.json) return printJson(res);
          printLines([`Check '${res.checkId}' is ${res.status}.`]);
        } finally {
          client.close();
        }
      });
  }
  return cmd;
}
