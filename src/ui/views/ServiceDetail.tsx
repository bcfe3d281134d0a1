/**
 * One service up close: what its callers saw of it (and the mesh errors they got), its
 * instances with health, the check output that explains it and callers' attempts to each, its
 * traffic policy (routes, splits with configured and live weights, subsets with their figures),
 * and the upstreams its sidecars call, endpoint by endpoint.
 */
import { Box, Text } from 'ink';
import { columnWidths, fitBlocks, shareRows } from '../layout.js';
import { DASH, firstLine, formatCount, formatMs, formatRate, formatReasons, formatRps, truncate } from '../format.js';
import type { InstanceRow, InstanceState, ServiceDetail as Detail, UpstreamRow } from '../model.js';
import type { PolicyDetail } from '../policy.js';
import { Line, More, Title } from './Line.js';
import { healthColor, rateColor } from './ServicesTable.js';

export interface ServiceDetailProps {
  name: string;
  detail: Detail | null;
  /** Lines this view may use; Infinity for no limit. */
  maxLines: number;
  width: number;
}

/** Title, callers' line, blank, two section titles with their header rows, and the blank between them. */
const FIXED_LINES = 8;

const STATE_COLOR: Record<InstanceState, string> = {
  passing: 'green',
  warning: 'yellow',
  critical: 'red',
  'node-down': 'red',
  draining: 'yellow',
};
const INSTANCE_SPECS = [
  { width: 'flex' as const, min: 8 },
  { width: 21 },
  { width: 9 },
  { width: 6 },
  { width: 6 },
  { width: 7 },
  { width: 5 },
];
const UPSTREAM_SPECS = [
  { width: 'flex' as const, min: 8 },
  { width: 15 },
  { width: 6 },
  { width: 6 },
  { width: 7 },
  { width: 7 },
];

const SUBSET_SPECS = [
  { width: 12 },
  { width: 'flex' as const, min: 8 },
  { width: 6 },
  { width: 6 },
  { width: 7 },
  { width: 7 },
];

/** Lines the policy section takes: title, route header + routes, one split line, subset header + subsets, blank. */
export function policyLines(p: PolicyDetail | null): number {
  if (!p) return 0;
  return (
    1 +
    (p.routes.length > 0 ? 1 + p.routes.length : 0) +
    (p.splits.length > 0 ? 1 : 0) +
    (p.subsets.length > 0 ? 1 + p.subsets.length : 0) +
    1
  );
}

const instanceLines = (i: InstanceRow) => (i.check || i.state === 'draining' ? 2 : 1);
const upstreamLines = (u: UpstreamRow) =>
  1 + u.endpoints.length + (u.metrics && formatReasons(u.metrics.meshErrors) ? 1 : 0) + (u.resilience ? 1 : 0);

export function ServiceDetail({ name, detail, maxLines, width }: ServiceDetailProps) {
  if (!detail) {
    return (
      <Box flexDirection="column" width={width}>
        <Title>{name}</Title>
        <Text color="yellow">{`  '${name}' is no longer in the catalog (esc to go back)`}</Text>
      </Box>
    );
  }
  const iHeights = detail.instances.map(instanceLines);
  const uHeights = detail.upstreams.map(upstreamLines);
  const sum = (xs: number[]) =>
    Math.max(
      1,
      xs.reduce((a, b) => a + b, 0),
    );
  const resilienceLines = detail.resilience ? 1 : 0;
  const [iRoom, uRoom] = shareRows(
    maxLines - FIXED_LINES - resilienceLines - policyLines(detail.policy),
    sum(iHeights),
    sum(uHeights),
  );
  const iFit = fitBlocks(iHeights, iRoom);
  const uFit = fitBlocks(uHeights, uRoom);
  const m = detail.metrics;
  const iw = columnWidths(INSTANCE_SPECS, width, 1);
  const uw = columnWidths(UPSTREAM_SPECS, width, 1);
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate-end">
        <Text bold color="cyan">
          {detail.name}
        </Text>
        <Text>{'  '}</Text>
        <Text color={healthColor(detail.healthy, detail.total)}>{`${detail.healthy}/${detail.total} healthy`}</Text>
        <Text>{m ? `  ${formatRps(m.rps)} rps  ` : '  no traffic figures'}</Text>
        {m ? <Text color={rateColor(m.successRate)}>{`${formatRate(m.successRate)} ok`}</Text> : null}
        {m ? <Text>{`  p50 ${formatMs(m.p50Ms)}  p99 ${formatMs(m.p99Ms)}`}</Text> : null}
      </Text>
      <Text wrap="truncate-end" {...(m && m.meshErrorCount > 0 ? { color: 'red' } : { dimColor: true })}>
        {truncate(callersLine(m), width)}
      </Text>
      {detail.resilience ? (
        <Text wrap="truncate-end" color="yellow">
          {truncate(`  callers' resilience: ${detail.resilience}`, width)}
        </Text>
      ) : null}
      <Text> </Text>
      <Title>{`INSTANCES (${detail.instances.length})`}</Title>
      <Line
        gap={1}
        cells={['INSTANCE', 'ENDPOINT', 'STATE', 'RPS', 'OK%', 'P99', 'CONNS'].map((h, i) => ({
          text: h,
          width: iw[i]!,
          align: i >= 3 ? 'right' : 'left',
          dim: true,
        }))}
      />
      {detail.instances.length === 0 ? <Text dimColor>{'  no instances'}</Text> : null}
      {detail.instances.slice(0, iFit.count).map((i) => (
        <Instance key={`${i.id}@${i.node}`} row={i} widths={iw} width={width} />
      ))}
      {iFit.more > 0 ? <More count={iFit.more} /> : null}
      <Text> </Text>
      {detail.policy ? <Policy policy={detail.policy} width={width} /> : null}
      <Title>{`UPSTREAMS (${detail.upstreams.length})`}</Title>
      <Line
        gap={1}
        cells={['UPSTREAM / ENDPOINT', 'LOCAL', 'RPS', 'OK%', 'P50', 'P99'].map((h, i) => ({
          text: h,
          width: uw[i]!,
          align: i >= 2 ? 'right' : 'left',
          dim: true,
        }))}
      />
      {detail.upstreams.length === 0 ? <Text dimColor>{'  this service calls no upstreams'}</Text> : null}
      {detail.upstreams.slice(0, uFit.count).map((u) => (
        <Upstream key={u.service} row={u} widths={uw} width={width} />
      ))}
      {uFit.more > 0 ? <More count={uFit.more} /> : null}
    </Box>
  );
}

/** Whose figures the title line shows, and the mesh errors callers got. */
function callersLine(m: Detail['metrics']): string {
  if (!m) return '  as callers see it: no calls from the mesh in the window';
  const who = `  as ${m.callers} caller${m.callers === 1 ? '' : 's'} saw it`;
  const reasons = formatReasons(m.meshErrors);
  return reasons ? `${who}; mesh errors: ${reasons}` : `${who}; no mesh errors`;
}

function Instance({ row: i, widths: w, width }: { row: InstanceRow; widths: number[]; width: number }) {
  const m = i.metrics;
  const check = i.check;
  const more = check && check.others > 0 ? ` (+${check.others} more)` : '';
  return (
    <>
      <Line
        gap={1}
        cells={[
          { text: `${i.id}@${i.node}`, width: w[0]! },
          { text: i.endpoint, width: w[1]! },
          {
            text: i.state === 'node-down' ? 'node down' : i.state,
            width: w[2]!,
            color: STATE_COLOR[i.state],
            bold: i.state !== 'passing',
          },
          { text: m ? formatRps(m.rps) : DASH, width: w[3]!, align: 'right' },
          {
            text: m ? formatRate(m.successRate) : DASH,
            width: w[4]!,
            align: 'right',
            ...(m && rateColor(m.successRate) ? { color: rateColor(m.successRate)! } : {}),
          },
          { text: m ? formatMs(m.p99Ms) : DASH, width: w[5]!, align: 'right' },
          { text: m ? String(m.activeConnections) : DASH, width: w[6]!, align: 'right' },
        ]}
      />
      {i.state === 'draining' ? (
        <Text wrap="truncate-end" color="yellow">
          {truncate('  ↳ sidecar draining: withdrawn from callers while requests in flight finish', width)}
        </Text>
      ) : check ? (
        <Text wrap="truncate-end" color={STATE_COLOR[check.status]} dimColor={check.status === 'passing'}>
          {truncate(`  ↳ ${check.id}: ${firstLine(check.output) || '(no output)'}${more}`, width)}
        </Text>
      ) : null}
    </>
  );
}

function Upstream({ row: u, widths: w, width }: { row: UpstreamRow; widths: number[]; width: number }) {
  const m = u.metrics;
  const reasons = m ? formatReasons(m.meshErrors) : '';
  return (
    <>
      <Line
        gap={1}
        cells={[
          { text: `→ ${u.service}`, width: w[0]!, bold: true },
          { text: u.local ?? DASH, width: w[1]!, dim: true },
          { text: m ? formatRps(m.rps) : DASH, width: w[2]!, align: 'right' },
          {
            text: m ? formatRate(m.successRate) : DASH,
            width: w[3]!,
            align: 'right',
            ...(m && rateColor(m.successRate) ? { color: rateColor(m.successRate)! } : {}),
          },
          { text: m ? formatMs(m.p50Ms) : DASH, width: w[4]!, align: 'right' },
          { text: m ? formatMs(m.p99Ms) : DASH, width: w[5]!, align: 'right' },
        ]}
      />
      {u.endpoints.map((e) => (
        <Line
          key={e.endpoint}
          gap={1}
          cells={[
            { text: `    ${e.endpoint}`, width: w[0]! },
            { text: '', width: w[1]! },
            { text: formatRps(e.rps), width: w[2]!, align: 'right' },
            {
              text: formatRate(e.successRate),
              width: w[3]!,
              align: 'right',
              ...(rateColor(e.successRate) ? { color: rateColor(e.successRate)! } : {}),
            },
            { text: '', width: w[4]! },
            { text: formatMs(e.p99Ms), width: w[5]!, align: 'right' },
          ]}
        />
      ))}
      {reasons ? (
        <Text wrap="truncate-end" color="red">
          {truncate(`    mesh errors: ${reasons}`, width)}
        </Text>
      ) : null}
      {u.resilience ? (
        <Text wrap="truncate-end" color="yellow">
          {truncate(`    resilience: ${u.resilience}`, width)}
        </Text>
      ) : null}
    </>
  );
}

function Policy({ policy: p, width }: { policy: PolicyDetail; width: number }) {
  const sw = columnWidths(SUBSET_SPECS, width, 1);
  const routeWidth = Math.max(8, Math.floor((width - 8) / 2));
  const splits = p.splits
    .map((s) => `${s.target} ${s.weight}%${s.livePercent === null ? '' : ` (live ${s.livePercent}%)`}`)
    .join('   ');
  return (
    <>
      <Title>{`TRAFFIC POLICY${p.loadBalancer ? `  balancer ${p.loadBalancer}` : ''}`}</Title>
      {p.routes.length > 0 ? (
        <Line
          gap={1}
          cells={[
            { text: 'ROUTE', width: 6, dim: true },
            { text: 'MATCH', width: routeWidth, dim: true },
            { text: 'DESTINATION', width: width - routeWidth - 8, dim: true },
          ]}
        />
      ) : null}
      {p.routes.map((r) => (
        <Line
          key={r.number}
          gap={1}
          cells={[
            { text: String(r.number), width: 6 },
            { text: r.match, width: routeWidth },
            { text: `→ ${r.destination}`, width: width - routeWidth - 8 },
          ]}
        />
      ))}
      {splits ? <Text wrap="truncate-end">{truncate(`SPLIT  ${splits}`, width)}</Text> : null}
      {p.subsets.length > 0 ? (
        <Line
          gap={1}
          cells={['SUBSET', 'FILTER', 'RPS', 'OK%', 'P99', 'REQS'].map((h, i) => ({
            text: h,
            width: sw[i]!,
            align: i >= 2 ? 'right' : 'left',
            dim: true,
          }))}
        />
      ) : null}
      {p.subsets.map((s) => (
        <Line
          key={s.name}
          gap={1}
          cells={[
            { text: `${s.name}${s.isDefault ? ' (default)' : ''}`, width: sw[0]! },
            { text: s.filter, width: sw[1]!, dim: true },
            { text: s.rps === null ? DASH : formatRps(s.rps), width: sw[2]!, align: 'right' },
            {
              text: formatRate(s.successRate),
              width: sw[3]!,
              align: 'right',
              ...(rateColor(s.successRate) ? { color: rateColor(s.successRate)! } : {}),
            },
            { text: formatMs(s.p99Ms), width: sw[4]!, align: 'right' },
            // Requests in the window, not a rate: a canary's few requests still show as a count.
            { text: s.requests === null ? DASH : formatCount(s.requests), width: sw[5]!, align: 'right' },
          ]}
        />
      ))}
      <Text> </Text>
    </>
  );
}
