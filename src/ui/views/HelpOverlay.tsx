/** The keys, shown in place of the body while `?` is toggled on. */
import { Box, Text } from 'ink';
import { truncate } from '../format.js';

export const HELP_KEYS: Array<[string, string]> = [
  ['↑ ↓  j k', 'select a service'],
  ['tab  shift-tab', 'next / previous service'],
  ['enter  →', 'open the selected service'],
  ['esc  ←', 'back to the overview'],
  ['?', 'show or hide this help'],
  ['q  ctrl-c', 'quit'],
];

const NOTES = [
  'HEALTHY  instances passing their checks on a live node / all',
  'RPS, OK%, P50, P99  requests/s, share of answers that are not',
  '  5xx or mesh errors, latency percentiles over the metrics window',
  'LEASE  critical once a node stops renewing its lease',
];

export function HelpOverlay({ width, maxLines }: { width: number; maxLines: number }) {
  const inner = Math.max(10, Math.min(width, 72) - 4);
  // Border (2) + title (1) + keys + blank (1) + notes; notes go first when room is short.
  const noteRoom = Math.max(0, maxLines - 4 - HELP_KEYS.length);
  const notes = NOTES.slice(0, noteRoom);
  return (
    <Box flexDirection="column" borderStyle="round" borderColor="cyan" paddingX={1} width={Math.min(width, 72)}>
      <Text bold>Keys</Text>
      {HELP_KEYS.map(([k, what]) => (
        <Text key={k} wrap="truncate-end">
          <Text color="cyan">{k.padEnd(16)}</Text>
          <Text>{truncate(what, Math.max(0, inner - 16))}</Text>
        </Text>
      ))}
      {notes.length > 0 ? <Text> </Text> : null}
      {notes.map((n) => (
        <Text key={n} dimColor wrap="truncate-end">
          {truncate(n, inner)}
        </Text>
      ))}
    </Box>
  );
}
