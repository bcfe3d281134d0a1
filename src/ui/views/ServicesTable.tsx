/**
 * Services across the mesh: healthy/total instances and what their callers experience (requests,
 * success and latency as the calling sidecars saw them, and the mesh's own answers they got);
 * the selected row is marked. Under a service whose callers' resilience did something in the
 * window (retries, timeouts, circuit-open, ejections) goes one more line saying what, when the
 * table has the room for every such line (the service's detail view always has it).
 */
import { Box, Text } from 'ink';
import { columnWidths, listWindow } from '../layout.js';
import { DASH, formatMs, formatRate, formatRps, truncate } from '../format.js';
import type { ServiceRow } from '../model.js';
import { Line, More, Title } from './Line.js';

export interface ServicesTableProps {
  rows: ServiceRow[];
  /** Lines available for rows (header and title not counted); Infinity for no limit. */
  maxRows: number;
  width: number;
  selected: string | undefined;
  /** Mark the selection (not in a one-shot print). */
  interactive: boolean;
}

const SPECS = [
  { width: 2 },
  { width: 'flex' as const, min: 8 },
  { width: 7 },
  { width: 6 },
  { width: 6 },
  { width: 11 },
  { width: 7 },
  { width: 7 },
];

export function healthColor(healthy: number, total: number): string {
  if (total === 0 || healthy === 0) return 'red';
  return healthy < total ? 'yellow' : 'green';
}

export function rateColor(rate: number | null | undefined): string | undefined {
  if (rate === null || rate === undefined) return undefined;
  if (rate < 0.95) return 'red';
  return rate < 0.999 ? 'yellow' : 'green';
}

export function ServicesTable({ rows, maxRows, width, selected, interactive }: ServicesTableProps) {
  const w = columnWidths(SPECS, width, 1);
  const selIndex = Math.max(
    0,
    rows.findIndex((r) => r.name === selected),
  );
  // Resilience lines only when all of them fit (then every row does too): the window stays one line per row.
  const extra = rows.filter((r) => r.resilience !== undefined).length;
  const withResilience = rows.length + extra <= maxRows;
  const win = listWindow(rows.length, maxRows, selIndex);
  const header = ['', 'SERVICE', 'HEALTHY', 'RPS', 'OK%', 'MESH ERRORS', 'P50', 'P99'];
  return (
    <Box flexDirection="column" width={width}>
      <Title>{`SERVICES (${rows.length})`}</Title>
      <Line
        gap={1}
        cells={header.map((h, i) => ({ text: h, width: w[i]!, align: i >= 2 ? 'right' : 'left', dim: true }))}
      />
      {rows.length === 0 ? <Text dimColor>{'  no services registered'}</Text> : null}
      {rows.slice(win.start, win.end).map((r) => {
        const isSel = interactive && r.name === (selected ?? rows[0]?.name);
        const m = r.metrics;
        const line = withResilience ? r.resilience : undefined;
        const row = (
          <Line
            key={r.name}
            gap={1}
            cells={[
              { text: isSel ? '›' : '', width: w[0]!, color: 'cyan', bold: true },
              {
                // A drain is on purpose: said by name, so 1/2 is not read as a failure.
                text: r.draining > 0 ? `${r.name} (${r.draining} draining)` : r.name,
                width: w[1]!,
                bold: isSel,
                ...(isSel ? { color: 'cyan' } : {}),
              },
              { text: `${r.healthy}/${r.total}`, width: w[2]!, align: 'right', color: healthColor(r.healthy, r.total) },
              { text: m ? formatRps(m.rps) : DASH, width: w[3]!, align: 'right' },
              {
                text: m ? formatRate(m.successRate) : DASH,
                width: w[4]!,
                align: 'right',
                ...(m && rateColor(m.successRate) ? { color: rateColor(m.successRate)! } : {}),
              },
              {
                text: m ? String(m.meshErrorCount) : DASH,
                width: w[5]!,
                align: 'right',
                ...(m && m.meshErrorCount > 0 ? { color: 'red' } : {}),
              },
              { text: m ? formatMs(m.p50Ms) : DASH, width: w[6]!, align: 'right' },
              { text: m ? formatMs(m.p99Ms) : DASH, width: w[7]!, align: 'right' },
            ]}
          />
        );
        if (line === undefined) return row;
        return (
          <Box key={r.name} flexDirection="column">
            {row}
            <Text wrap="truncate-end" color="yellow">
              {truncate(`   ↳ resilience: ${line}`, width)}
            </Text>
          </Box>
        );
      })}
      {win.more > 0 ? <More count={win.more} /> : null}
    </Box>
  );
}
