/** Intentions (source → destination, allow/deny) under the default policy that applies to the rest. */
import { Box, Text } from 'ink';
import { columnWidths, listWindow } from '../layout.js';
import type { IntentionRow } from '../model.js';
import { Line, More, Title } from './Line.js';

export interface IntentionsListProps {
  rows: IntentionRow[];
  defaultAction: 'allow' | 'deny';
  maxRows: number;
  width: number;
}

const SPECS = [{ width: 'flex' as const, min: 8 }, { width: 5 }];

export function IntentionsList({ rows, defaultAction, maxRows, width }: IntentionsListProps) {
  const w = columnWidths(SPECS, width, 1);
  const win = listWindow(rows.length, maxRows);
  return (
    <Box flexDirection="column" width={width}>
      <Title>{`INTENTIONS (default ${defaultAction})`}</Title>
      <Line
        gap={1}
        cells={[
          { text: 'SOURCE → DESTINATION', width: w[0]!, dim: true },
          { text: 'RULE', width: w[1]!, dim: true },
        ]}
      />
      {rows.length === 0 ? <Text dimColor wrap="truncate-end">{`  none: ${defaultAction} applies to all`}</Text> : null}
      {rows.slice(win.start, win.end).map((r) => (
        <Line
          key={`${r.source}>${r.destination}`}
          gap={1}
          cells={[
            { text: `${r.source} → ${r.destination}`, width: w[0]! },
            { text: r.action, width: w[1]!, color: r.action === 'allow' ? 'green' : 'red' },
          ]}
        />
      ))}
      {win.more > 0 ? <More count={win.more} /> : null}
    </Box>
  );
}
