/**
 * Two lines: who and how the registry is (trust domain, reachable, revision, store), then what
 * expires (CA, this node's certificate), the default policy and whether metrics flow; a third,
 * red, when a sidecar on this host cannot serve its service.
 */
import type { ReactNode } from 'react';
import { Box, Text } from 'ink';
import type { MeshError } from '../../errors/index.js';
import type { MeshSnapshot } from '../data/source.js';
import { formatExpiry, formatSpan, truncate, type Urgency } from '../format.js';

export interface HeaderProps {
  snapshot: MeshSnapshot | undefined;
  /** undefined until the first read has finished. */
  reachable: boolean | undefined;
  error: MeshError | undefined;
  /** When the shown snapshot was read (to say how old it is while the registry is away). */
  lastUpdated: Date | undefined;
  now: Date;
  width: number;
  sourceLabel: string;
  /** First word of the header ("meshctl", or "meshctl demo"). */
  title?: string;
}

const DAY = 86_400_000;
const URGENCY_COLOR: Record<Urgency, string | undefined> = { ok: undefined, soon: 'yellow', expired: 'red' };

function linkState(p: HeaderProps): { text: string; color: string } {
  if (p.reachable === undefined) return { text: `… connecting to ${p.sourceLabel}`, color: 'yellow' };
  if (p.reachable) return { text: '● reachable', color: 'green' };
  const what =
    !p.error || p.error.code === 'MESH_ERR_UNAVAILABLE' || p.error.code === 'MESH_ERR_TIMEOUT'
      ? 'unreachable'
      : 'failing';
  const age =
    p.snapshot && p.lastUpdated ? `, showing data ${formatSpan(p.now.getTime() - p.lastUpdated.getTime())} old` : '';
  return { text: `✗ ${what}${age}, retrying`, color: 'red' };
}

export function Header(p: HeaderProps) {
  const s = p.snapshot;
  const link = linkState(p);
  const title = p.title ?? 'meshctl';
  const first = s ? `${title}  ${s.registry.trustDomain}  registry ` : `${title}  registry `;
  const linkText = truncate(link.text, Math.max(0, p.width - first.length));
  const several = (s?.registries?.length ?? 0) > 1 ? `  registries ${s?.registries?.length}` : '';
  const tail = s && p.reachable ? `  rev ${s.registry.revision}  store ${s.registry.store}${several}` : '';
  // The link state gets the room first; revision and store only when they fit.
  const showTail = tail !== '' && first.length + linkText.length + tail.length <= p.width;
  let second: ReactNode;
  if (p.reachable === false) {
    // While the registry is away, why is worth more than facts about old data.
    second = (
      <Text color="red" wrap="truncate-end">
        {truncate(p.error?.message ?? 'no answer', p.width)}
      </Text>
    );
  } else if (s) {
    second = <Facts snapshot={s} now={p.now} />;
  } else {
    second = <Text> </Text>;
  }
  return (
    <Box flexDirection="column" width={p.width}>
      <Text wrap="truncate-end">
        <Text bold>{first}</Text>
        <Text color={link.color} bold={p.reachable === false}>
          {linkText}
        </Text>
        {showTail ? <Text dimColor>{tail}</Text> : null}
      </Text>
      {second}
      {s && sidecarLine(s) ? (
        <Text color="red" bold wrap="truncate-end">
          {truncate(sidecarLine(s)!, p.width)}
        </Text>
      ) : null}
    </Box>
  );
}

/** How many lines the header takes for this snapshot. */
export function headerLines(s: MeshSnapshot | undefined): number {
  return s && sidecarLine(s) ? 3 : 2;
}

function sidecarLine(s: MeshSnapshot): string | undefined {
  const problems = s.agent?.sidecarProblems ?? [];
  const first = problems[0];
  if (!first) return undefined;
  const more = problems.length > 1 ? ` (+${problems.length - 1} more: meshctl services)` : '';
  return `✗ sidecar of ${first.service} cannot serve it: ${first.problem}${more}`;
}

function Facts({ snapshot: s, now }: { snapshot: MeshSnapshot; now: Date }) {
  const ca = formatExpiry(s.registry.caNotAfter, now, 30 * DAY);
  const node = s.agent ? formatExpiry(s.agent.nodeCertNotAfter, now, 3_600_000) : null;
  return (
    <Text wrap="truncate-end">
      <Text>CA </Text>
      <Text color={URGENCY_COLOR[ca.urgency]}>{ca.text}</Text>
      {s.agent && node ? (
        <>
          <Text>{`  node ${s.agent.node} cert `}</Text>
          <Text color={URGENCY_COLOR[node.urgency]}>{node.text}</Text>
        </>
      ) : null}
      <Text>{'  default '}</Text>
      <Text color={s.defaultAction === 'deny' ? 'green' : 'yellow'}>{s.defaultAction}</Text>
      <Text>{'  metrics: '}</Text>
      {s.metrics ? (
        <>
          <Text>{`${s.metrics.windowSeconds}s window`}</Text>
          {/* Figures without a registry that did not answer: its agents' traffic is missing. */}
          {s.metrics.registries && s.metrics.registries.missing.length > 0 ? (
            <Text color="yellow">{`, without ${s.metrics.registries.missing.length} of ${s.metrics.registries.asked} registries (${s.metrics.registries.missing.join(', ')} not answering)`}</Text>
          ) : null}
        </>
      ) : (
        <Text color="yellow">{s.metricsProblem ?? 'not available'}</Text>
      )}
    </Text>
  );
}
