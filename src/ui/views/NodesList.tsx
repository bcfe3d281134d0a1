/**
 * Each agent's node: its lease (alive, or critical once the lease expired), when it was last
 * heard, and — when several registries serve the mesh — which one its agent is on.
 */
import { Box, Text } from 'ink';
import { columnWidths, listWindow } from '../layout.js';
import { formatAgo } from '../format.js';
import type { NodeRow } from '../model.js';
import { Line, More, Title } from './Line.js';

export interface NodesListProps {
  rows: NodeRow[];
  maxRows: number;
  width: number;
  now: Date;
  showRegistry?: boolean;
}

const SPECS = [{ width: 'flex' as const, min: 6 }, { width: 8 }, { width: 8 }];
const SPECS_WITH_REGISTRY = [...SPECS, { width: 'flex' as const, min: 9 }];

export function NodesList({ rows, maxRows, width, now, showRegistry = false }: NodesListProps) {
  const w = columnWidths(showRegistry ? SPECS_WITH_REGISTRY : SPECS, width, 1);
  const registryCell = (text: string, dim: boolean) => (showRegistry ? [{ text, width: w[3]!, dim }] : []);
  const win = listWindow(rows.length, maxRows);
  const alive = rows.filter((r) => r.alive).length;
  return (
    <Box flexDirection="column" width={width}>
      <Title>{`NODES (${alive}/${rows.length} alive)`}</Title>
      <Line
        gap={1}
        cells={[
          { text: 'NODE', width: w[0]!, dim: true },
          { text: 'LEASE', width: w[1]!, dim: true },
          { text: 'SEEN', width: w[2]!, align: 'right', dim: true },
          ...registryCell('REGISTRY', true),
        ]}
      />
      {rows.length === 0 ? <Text dimColor>{'  no nodes have joined'}</Text> : null}
      {rows.slice(win.start, win.end).map((r) => (
        <Line
          key={r.name}
          gap={1}
          cells={[
            { text: r.name, width: w[0]! },
            { text: r.alive ? 'alive' : 'critical', width: w[1]!, color: r.alive ? 'green' : 'red', bold: !r.alive },
            { text: r.alive ? formatAgo(r.lastSeen, now) : 'expired', width: w[2]!, align: 'right', dim: true },
            ...registryCell(r.registry ?? '-', false),
          ]}
        />
      ))}
      {win.more > 0 ? <More count={win.more} /> : null}
    </Box>
  );
}
