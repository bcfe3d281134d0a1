import { Command } from 'commander';
import type { AgentFlags } from '../../targets/agent.js';
import { withAgentFlags, withJson } from '../flags.js';
import { tableLines } from '../output.js';
import { emit, withAgent } from '../run.js';

export function servicesCommand(): Command {
  return withJson(
    withAgentFlags(new Command('services').description("list this host's services with their check states")),
  ).action(async (opts: AgentFlags & { json?: boolean }) => {
    const res = await withAgent(opts, (c) => c.services());
    emit(opts, res, (r) => [
      ...tableLines(
        ['SERVICE', 'PORT', 'PROTOCOL', 'STATUS', 'CHECKS', 'SOURCE'],
        r.services.map((s) => [
          s.id,
          String(s.port),
          s.protocol,
          s.status,
          s.checks.map((c) => `${c.checkId}:${c.status}`).join(' ') || '-',
          s.source.kind === 'file' ? s.source.file : 'cli',
        ]),
        'no services registered on this host',
      ),
      ...r.services
        .flatMap((s) => s.checks)
        .filter((c) => c.status !== 'passing' && c.output)
        .map((c) => `  ${c.checkId}: ${c.output.split('\n')[0]}`),
      ...r.definitionProblems.map(
        (p) =>
          `invalid definition: ${p.message.includes(p.file) ? p.message : `${p.file}: ${p.message}`} (the last good version stays registered)`,
      ),
    ]);
  });
}
