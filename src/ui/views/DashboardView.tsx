/**
 * The whole screen as a pure function of its props: header, then the overview (services, and
 * nodes beside intentions), one service's detail, or the help; a key line at the bottom. It
 * never draws more than `height` lines, so Ink can update it in place without clearing.
 */
import { useMemo, type ReactNode } from 'react';
import { Box, Text } from 'ink';
import type { MeshError } from '../../errors/index.js';
import type { MeshSnapshot } from '../data/source.js';
import { shareRows } from '../layout.js';
import { intentionRows, nodeRows, serviceDetail, serviceRows } from '../model.js';
import { Header, headerLines } from './Header.js';
import { ServicesTable } from './ServicesTable.js';
import { NodesList } from './NodesList.js';
import { IntentionsList } from './IntentionsList.js';
import { ServiceDetail } from './ServiceDetail.js';
import { HelpOverlay } from './HelpOverlay.js';
import { Footer, type ViewMode } from './Footer.js';

export interface DashboardViewProps {
  snapshot: MeshSnapshot | undefined;
  reachable: boolean | undefined;
  error: MeshError | undefined;
  lastUpdated: Date | undefined;
  now: Date;
  width: number;
  /** Most lines to draw; Infinity for a one-shot print that shows everything. */
  height: number;
  mode: ViewMode;
  help: boolean;
  /** The selected service's name (the first service when undefined). */
  selected: string | undefined;
  /** Live dashboard: mark the selection and show the key line. */
  interactive: boolean;
  sourceLabel: string;
  title?: string;
  /** Keys the caller adds, for the help (the demo's 1/2). */
  extraHelp?: ReadonlyArray<readonly [string, string]>;
}

/** Blank, services title + header, blank, nodes/intentions title + header. */
const OVERVIEW_FIXED = 6;

export function DashboardView(p: DashboardViewProps) {
  const s = p.snapshot;
  const services = useMemo(() => (s ? serviceRows(s) : []), [s]);
  const nodes = useMemo(() => (s ? nodeRows(s) : []), [s]);
  const intentions = useMemo(() => (s ? intentionRows(s) : []), [s]);
  const selected = p.selected ?? services[0]?.name;
  const detail = useMemo(
    () => (s && p.mode === 'detail' && selected ? serviceDetail(s, selected) : null),
    [s, p.mode, selected],
  );

  const footerLines = p.interactive ? 1 : 0;
  const body = Math.max(0, p.height - headerLines(s) - footerLines);
  const half = Math.floor((p.width - 2) / 2);

  let content: ReactNode;
  if (p.help) {
    content = <HelpOverlay width={p.width} maxLines={body} {...(p.extraHelp ? { extraKeys: p.extraHelp } : {})} />;
  } else if (!s) {
    content = null;
  } else if (p.mode === 'detail' && selected) {
    content = (
      <Box flexDirection="column" marginTop={1}>
        <ServiceDetail name={selected} detail={detail} maxLines={body - 1} width={p.width} />
      </Box>
    );
  } else {
    const bottomNeed = Math.max(1, nodes.length, intentions.length);
    // A service's resilience line (ServicesTable) needs its own line when there is room for it.
    const serviceNeed = services.length + services.filter((r) => r.resilience !== undefined).length;
    const [sRows, bRows] = shareRows(body - OVERVIEW_FIXED, Math.max(1, serviceNeed), bottomNeed);
    content = (
      <Box flexDirection="column">
        <Text> </Text>
        <ServicesTable
          rows={services}
          maxRows={sRows}
          width={p.width}
          selected={selected}
          interactive={p.interactive}
        />
        <Text> </Text>
        <Box flexDirection="row" width={p.width}>
          <NodesList
            rows={nodes}
            maxRows={bRows}
            width={half}
            now={p.now}
            showRegistry={(s?.registries?.length ?? 0) > 1}
          />
          <Box width={2} />
          <IntentionsList
            rows={intentions}
            defaultAction={s.defaultAction}
            maxRows={bRows}
            width={p.width - half - 2}
          />
        </Box>
      </Box>
    );
  }

  // Growing spacer keeps the key line at the bottom of a live screen.
  return (
    <Box
      flexDirection="column"
      width={p.width}
      {...(p.interactive && Number.isFinite(p.height) ? { height: p.height } : {})}
    >
      <Header
        snapshot={s}
        reachable={p.reachable}
        error={p.error}
        lastUpdated={p.lastUpdated}
        now={p.now}
        width={p.width}
        sourceLabel={p.sourceLabel}
        {...(p.title ? { title: p.title } : {})}
      />
      <Box flexDirection="column" flexGrow={1} overflow="hidden">
        {content}
      </Box>
      {p.interactive ? <Footer mode={p.mode} help={p.help} width={p.width} sourceLabel={p.sourceLabel} /> : null}
    </Box>
  );
}
