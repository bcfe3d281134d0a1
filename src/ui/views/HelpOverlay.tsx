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
  'RPS, OK%, P50, P99  what callers saw: their sidecars count each',
  '  request once, after failover; OK% = not 5xx and no mesh error',
  'MESH ERRORS  answers the mesh made to callers in the window',
  '  (no-healthy-endpoints, connect-failure, …; reasons in details)',
  "instance RPS/OK%  callers' attempts to it (failed-over ones count)",
  'LEASE  critical once a node stops renewing its lease',
];

export function HelpOverlay({
  width,
  maxLines,
  extraKeys = [],
}: {
  width: number;
  maxLines: number;
  /** Keys the caller adds (the demo's 1 and 2), listed after the dashboard's own. */
  extraKeys?: ReadonlyArray<readonly [string, string]>;
}) {
  const inner = Math.max(10, Math.min(width, 72) - 4);
  const keys = [...HELP_KEYS, ...extraKeys];
  // Border (2) + title (1) + keys + blank (1) + notes; notes go first when room is short.
  const noteRoom = Math.max(0, maxLines - 4 - keys.length);
  const notes = NOTES.slice(0, noteRoom);
  return (
    <Box flexDirection="column" borderStyle="round" borderColor="cyan" paddingX={1} width={Math.min(width, 72)}>
      <Text bold>Keys</Text>
      {keys.map(([k, what]) => (
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
