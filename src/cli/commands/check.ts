import { Command } from 'commander';
import type { AgentFlags } from '../../targets/agent.js';
import { withAgentFlags, withJson } from '../flags.js';
import { emit, withAgent } from '../run.js';

const VERBS = { pass: 'passing', warn: 'warning', fail: 'critical' } as const;

export function checkCommand(): Command {
  const cmd = new Command('check').description('report the state of a TTL check');
  for (const [verb, status] of Object.entries(VERBS)) {
    withJson(
      withAgentFlags(
        cmd
          .command(verb)
          .description(`mark TTL check ID ${status}`)
          .argument('<id>', 'check id (see `meshctl services`)')
          .option('--note <text>', 'output to store with the state', ''),
      ),
    ).action(async (id: string, opts: AgentFlags & { note: string; json?: boolean }) => {
      const res = await withAgent(opts, (c) => c.ttlUpdate(id, status, opts.note));
      emit(opts, res, (r) => [`Check '${r.checkId}' is ${r.status}.`]);
    });
  }
  return cmd;
}
