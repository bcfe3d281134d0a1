import { Command } from 'commander';
import type { AgentFlags } from '../../targets/agent.js';
import { withAgentFlags, withJson } from '../flags.js';
import { tableLines } from '../output.js';
import { emit, withAgent } from '../run.js';
import type { DefinitionProblem, ServiceView } from '../../agent/admin-api.js';
import { resilienceText } from '../../api/resilience-window.js';

export function servicesCommand(): Command {
  return withJson(
    withAgentFlags(
      new Command('services').description(
        `list this host's services with their check states (exit ${SIDECAR_PROBLEM_EXIT} when a sidecar cannot serve its service)`,
      ),
    ),
  ).action(async (opts: AgentFlags & { json?: boolean }) => {
    const res = await withAgent(opts, (c) => c.services());
    // A sidecar that cannot serve (an upstream port it cannot bind, …) is a failure to see.
    if (res.services.some((s) => s.sidecarProblem)) process.exitCode = SIDECAR_PROBLEM_EXIT;
    emit(opts, res, servicesText);
  });
}

/** What `meshctl services` prints: the table, then a line per problem and per busy upstream. */
export function servicesText(r: { services: ServiceView[]; definitionProblems: DefinitionProblem[] }): string[] {
  return [
    ...tableLines(
      ['SERVICE', 'PORT', 'PROTOCOL', 'STATUS', 'CHECKS', 'SOURCE'],
      r.services.map((s) => [
        s.id,
        String(s.port),
        s.protocol,
        s.sidecarProblem ? 'sidecar-error' : s.draining ? 'draining' : s.status,
        s.checks.map((c) => `${c.checkId}:${c.status}`).join(' ') || '-',
        s.source.kind === 'file' ? s.source.file : 'cli',
      ]),
      'no services registered on this host',
    ),
    ...r.services.flatMap((s) => (s.sidecarProblem ? [`  ${s.id}: sidecar cannot serve it: ${s.sidecarProblem}`] : [])),
    // Draining is a stop on purpose, not a failure: said apart, and the exit stays 0.
    ...r.services.flatMap((s) =>
      s.draining && !s.sidecarProblem
        ? [`  ${s.id}: sidecar draining: withdrawn from callers while requests in flight finish`]
        : [],
    ),
    ...r.services.flatMap(resilienceLines),
    ...r.services
      .flatMap((s) => s.checks)
      .filter((c) => c.status !== 'passing' && c.output)
      .map((c) => `  ${c.checkId}: ${c.output.split('\n')[0]}`),
    ...r.definitionProblems.flatMap(problemLines),
  ];
}

/**
 * One line per upstream whose resilience did something in the window (`  web → api: 3 retries,
 * 1 out now (last 10s)`); none for a quiet one, so the table reads as before.
 */
function resilienceLines(s: ServiceView): string[] {
  const r = s.resilience;
  if (r === undefined) return [];
  return r.upstreams.flatMap((u) => {
    const text = resilienceText(u, { limits: true });
    return text === undefined ? [] : [`  ${s.id} → ${u.service}: ${text} (last ${r.windowSeconds}s)`];
  });
}

/** sysexits' EX_UNAVAILABLE: a service is registered but its sidecar does not serve it. */
export const SIDECAR_PROBLEM_EXIT = 69;

/**
 * A definition file's problem in two lines: what is wrong (one line, named by file:line:col),
 * then what of the file is in force — its last good version only when there was one.
 */
export function problemLines(p: DefinitionProblem): string[] {
  const first = (p.message.split('\n')[0] ?? '').replace(/[\s:]+$/, '');
  const what = first.startsWith(p.file) ? first : `${p.file}: ${first}`;
  const kept = p.registered ?? [];
  return [
    `invalid definition ${what}`,
    kept.length > 0
      ? `  still registered from its last good version: ${kept.join(', ')}`
      : '  nothing from this file is registered',
  ];
}
