import { Command } from 'commander';
import { agentClientFor, type AgentFlags } from '../../targets/agent.js';
import { printJson, printLines, printTable } from '../output.js';
import { withAgentFlags } from './agent.js';

export function servicesCommand(): Command {
  return withAgentFlags(new Command('services').description("list this host's services with their check states"))
    .option('--json', 'print JSON instead of text')
    .action(async (opts: AgentFlags & { json?: boolean }) => {
      const client = await agentClientFor(opts);
      try {
        const res = await client.services();
        if (opts.json) return printJson(res);
        printTable(
          ['SERVICE', 'PORT', 'PROTOCOL', 'STATUS', 'CHECKS', 'SOURCE'],
          res.services.map((s) => [
            s.id,
            String(s.port),
            s.protocol,
            s.status,
            s.checks.map((c) => `${c.checkId}:${c.status}`).join(' ') || '-',
            s.source.kind === 'file' ? s.source.file : 'cli',
          ]),
          'no services registered on this host',
        );
        for (const c of res.services.flatMap((s) => s.checks)) {
          if (c.status !== 'passing' && c.output) printLines([`  ${c.checkId}: ${c.output.split('\n')[0]}`]);
        }
        for (const p of res.definitionProblems) {
          printLines([
            `invalid definition: ${p.message.includes(p.file) ? p.message : `${p.file}: ${p.message}`} (the last good version stays registered)`,
          ]);
        }
      } finally {
        client.close();
      }
    });
}
