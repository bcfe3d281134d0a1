import { afterEach, describe, expect, it } from 'vitest';
import { Text } from 'ink';
import { useMeshData } from '../../src/ui/hooks/use-mesh-data.js';
import { useTerminalSize } from '../../src/ui/hooks/use-terminal-size.js';
import type { MeshDataSource } from '../../src/ui/data/source.js';
import { demoSnapshot, FakeSource, registryStatus, unavailable } from './fixtures.js';
import { renderInTerminal, type TestTerminal } from './terminal.js';

/** Prints the hook's state as JSON, so the test reads it off the screen like any other frame. */
function Probe({ source, intervalMs }: { source: MeshDataSource; intervalMs: number }) {
  const m = useMeshData(source, intervalMs);
  return (
    <Text>
      {JSON.stringify({
        reachable: m.reachable ?? null,
        error: m.error?.code ?? null,
        revision: m.data?.registry.revision ?? null,
        metrics: m.data ? m.data.metrics !== null : null,
        metricsProblem: m.data?.metricsProblem ?? null,
        updated: m.lastUpdated !== undefined,
      })}
    </Text>
  );
}

type Seen = {
  reachable: boolean | null;
  error: string | null;
  revision: number | null;
  metrics: boolean | null;
  metricsProblem: string | null;
  updated: boolean;
};
const state = (t: TestTerminal): Seen | undefined => {
  try {
    return JSON.parse(t.screen()) as Seen;
  } catch {
    return undefined;
  }
};
const until = (t: TestTerminal, pred: (s: Seen) => boolean, what: string) =>
  t.waitFor(() => {
    const s = state(t);
    return s !== undefined && pred(s);
  }, what);

/** Wide enough that the probe's JSON stays on one line. */
const WIDE = { columns: 400 };

let open: TestTerminal | undefined;
afterEach(() => {
  open?.app.unmount();
  open = undefined;
});

describe('useMeshData', () => {
  it('reads at once and then keeps polling', async () => {
    const src = new FakeSource();
    open = renderInTerminal(<Probe source={src} intervalMs={30} />, WIDE);
    await until(open, (s) => s.reachable === true && s.revision === 42 && s.updated, 'first data');
    src.snapshot = demoSnapshot({ registry: registryStatus({ revision: 43 }) });
    await until(open, (s) => s.revision === 43, 'the next poll to bring revision 43');
    const reads = src.reads;
    await open.waitFor(() => src.reads >= reads + 2, 'two more polls');
  });

  it('keeps the last good data while reads fail, and recovers', async () => {
    const src = new FakeSource();
    open = renderInTerminal(<Probe source={src} intervalMs={30} />, WIDE);
    await until(open, (s) => s.reachable === true, 'first data');
    src.fail = unavailable();
    await until(open, (s) => s.reachable === false && s.error === 'MESH_ERR_UNAVAILABLE', 'the failure to show');
    expect(state(open)).toMatchObject({ revision: 42, updated: true });
    const failedReads = src.reads;
    await open.waitFor(() => src.reads > failedReads, 'a retry');
    src.fail = undefined;
    src.snapshot = demoSnapshot({ registry: registryStatus({ revision: 50 }) });
    await until(open, (s) => s.reachable === true && s.error === null && s.revision === 50, 'recovery');
  });

  it('starts unreachable with no data when the first read fails', async () => {
    const src = new FakeSource();
    src.fail = unavailable();
    open = renderInTerminal(<Probe source={src} intervalMs={30} />, WIDE);
    await until(open, (s) => s.reachable === false, 'the failure');
    expect(state(open)).toMatchObject({ revision: null, updated: false });
  });

  it('shows metrics as not available while the registry has no metrics endpoint, and picks them up when it appears', async () => {
    const src = new FakeSource();
    src.metricsMissing = true;
    open = renderInTerminal(<Probe source={src} intervalMs={30} />, WIDE);
    await until(open, (s) => s.reachable === true, 'first data');
    expect(state(open)).toMatchObject({ metrics: false, metricsProblem: 'not available' });
    src.metricsMissing = false;
    await until(open, (s) => s.metrics === true && s.metricsProblem === null, 'metrics to appear');
  });

  it('stops polling when unmounted', async () => {
    const src = new FakeSource();
    const t = renderInTerminal(<Probe source={src} intervalMs={20} />, WIDE);
    await until(t, (s) => s.reachable === true, 'first data');
    t.app.unmount();
    const reads = src.reads;
    // A few intervals later nothing more has been read (no leaked timer).
    await new Promise((r) => setTimeout(r, 150));
    expect(src.reads).toBeLessThanOrEqual(reads + 1);
  });
});

function Size() {
  const { columns, rows } = useTerminalSize();
  return <Text>{`${columns}x${rows}`}</Text>;
}

describe('useTerminalSize', () => {
  it('follows resize events', async () => {
    const t = renderInTerminal(<Size />, { columns: 80, rows: 24 });
    open = t;
    await t.waitFor((s) => s === '80x24', 'the first size');
    t.stdout.resize(100, 40);
    await t.waitFor((s) => s === '100x40', 'the new size');
  });
});
