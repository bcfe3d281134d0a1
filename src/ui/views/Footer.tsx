/** The one line of key hints, with where the data comes from on the right. */
import { Text } from 'ink';
import { truncate } from '../format.js';

export type ViewMode = 'overview' | 'detail';

const HINTS: Record<ViewMode, string> = {
  overview: '↑↓ select  enter details  ? help  q quit',
  detail: '↑↓ other service  esc back  ? help  q quit',
};

export function Footer({
  mode,
  help,
  width,
  sourceLabel,
}: {
  mode: ViewMode;
  help: boolean;
  width: number;
  sourceLabel: string;
}) {
  const hint = help ? 'esc/? close help  q quit' : HINTS[mode];
  const room = width - hint.length - 2;
  const right = room >= 12 ? truncate(sourceLabel, room - 1) : '';
  return (
    <Text wrap="truncate-end">
      <Text inverse>{` ${hint} `}</Text>
      <Text dimColor>{right ? ` ${right.padStart(room - 1)}` : ''}</Text>
    </Text>
  );
}
