/** What `meshctl demo` does around the demo itself: progress, Ctrl-C, dashboard or summary. */
import { formatTable } from '../util/table.js';
import { startDemo, summarize, type DemoSummary, type RunningDemo } from './run.js';
import { sleep } from '../util/async.js';

export interface DemoCommandOptions {
  headless?: boolean;
  duration: number;
  dataDir?: string;
  rps: number;
}

export type DemoCommandResult = (DemoSummary & { lines: string[]; dir: string }) | undefined;

export async function runDemoCommand(opts: DemoCommandOptions): Promise<DemoCommandResult> {
  const t0 = Date.now();
  let demo: RunningDemo | undefined;
  let interrupted = false;
  const startUp = new AbortController();
  const onSignal = () => {
    interrupted = true;
    startUp.abort();
    process.stderr.write('\nstopping the demo…\n');
  };
  // SIGHUP too: closing the terminal while the demo starts must still tear it all down.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    try {
      demo = await startDemo({
        ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
        rps: opts.rps,
        signal: startUp.signal,
        progress: (step, state) => process.stderr.write(state === 'start' ? `… ${step}\n` : `✓ ${step}\n`),
      });
    } catch (e) {
      // Stopped while starting: startDemo has torn down what it started; whatever failed on the way
      // (a child that got the terminal's signal too) is not news.
      if (interrupted) {
        process.stderr.write('✓ every process the demo started has stopped\n');
        return undefined;
      }
      throw e;
    }
    process.stderr.write(`mesh is up in ${((Date.now() - t0) / 1000).toFixed(1)}s (state and logs in ${demo.dir})\n`);
    // Stopped while starting: no dashboard, no summary, straight to teardown.
    if (interrupted) return undefined;
    if (opts.headless) {
      const started = Date.now();
      while (!interrupted && Date.now() - started < opts.duration) await sleep(100);
      const s = summarize(demo, (Date.now() - started) / 1000);
      return { ...s, dir: demo.dir, lines: summaryLines(s) };
    }
    (await import('../ui/live-terminal.js')).letInkDrawLive();
    const { runDashboard } = await import('../ui/run-dashboard.js');
    const { openMeshSource } = await import('../ui/data/open-source.js');
    // The dashboard handles its own keys (q, Ctrl-C); teardown follows when it returns.
    process.off('SIGINT', onSignal);
    const source = await openMeshSource({
      registry: demo.registry.url,
      token: demo.registry.token,
      caFile: demo.registry.caFile,
    });
    try {
      // 1 and 2 stop or start an api instance's app, to watch it turn critical and traffic move.
      const toggle = (app: RunningDemo['apps']['apiA']) => () => void (app.running ? app.stop() : app.start());
      await runDashboard(source, {
        intervalMs: 1000,
        title: 'meshctl demo (1/2: stop/start api)',
        extraKeys: { '1': toggle(demo.apps.apiA), '2': toggle(demo.apps.apiB) },
        extraHelp: DEMO_KEYS,
      });
    } finally {
      source.close();
    }
    return undefined;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    if (demo) {
      process.stderr.write('tearing the demo down…\n');
      await demo.stop();
      process.stderr.write('✓ every process the demo started has stopped\n');
    }
  }
}

/** The demo's own keys, as the dashboard's help lists them. */
export const DEMO_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['1', "demo: stop / start api-1's app"],
  ['2', "demo: stop / start api-2's app"],
];

/** The headless summary as printed (exported for its test). */
export function summaryLines(s: DemoSummary): string[] {
  const w = s.web;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `meshctl demo: ${s.durationSeconds.toFixed(1)}s of traffic into web → api (through the sidecars, mTLS)`,
    '',
    ...formatTable(
      ['SERVICE', 'REQUESTS', 'SUCCESS', 'P50', 'P99'],
      [
        ['web', String(w.requests), pct(s.successRate), `${w.p50Ms.toFixed(1)}ms`, `${w.p99Ms.toFixed(1)}ms`],
        // What each api instance answered of web's requests (its own latency is in `meshctl status`).
        ...Object.entries(s.apiInstances)
          .sort()
          .map(([inst, n]) => [`api (${inst})`, String(n), '', '', '']),
      ],
    ),
    '',
    ...(Object.keys(w.byStatus).length
      ? [
          `answers by status: ${Object.entries(w.byStatus)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')}`,
        ]
      : []),
    s.worked
      ? 'The mesh worked: every request crossed two sidecars over mTLS and both api instances served.'
      : 'The mesh did NOT work as expected: see the logs in the demo directory.',
  ];
}
