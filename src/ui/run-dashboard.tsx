/**
 * The three ways `meshctl status` shows the mesh: the live dashboard (a terminal on both ends),
 * one plain frame, or the gathered data as JSON. The command only picks one and passes the source.
 */
import { render, renderToString } from 'ink';
import type { MeshDataSource, MeshSnapshot } from './data/source.js';
import { gatherMesh } from './data/source.js';
import { Dashboard } from './app.js';
import { DashboardView } from './views/DashboardView.js';

// The alternate screen (as top and less use): the shell's scrollback is back after quitting.
const ENTER_ALT_SCREEN = '\u001B[?1049h\u001B[H';
const LEAVE_ALT_SCREEN = '\u001B[?1049l';

export interface LiveOptions {
  intervalMs?: number;
  /** Header title (default "meshctl"). */
  title?: string;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  extraKeys?: Readonly<Record<string, () => void>>;
  extraHelp?: ReadonlyArray<readonly [string, string]>;
}

/** Runs the live dashboard until `q`, ctrl-c, SIGTERM or SIGHUP. */
export async function runDashboard(source: MeshDataSource, opts: LiveOptions = {}): Promise<void> {
  const stdout = opts.stdout ?? process.stdout;
  const stdin = opts.stdin ?? process.stdin;
  const alt = stdout.isTTY === true;
  if (alt) stdout.write(ENTER_ALT_SCREEN);
  const app = render(
    <Dashboard
      source={source}
      {...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {})}
      {...(opts.title ? { title: opts.title } : {})}
      {...(opts.extraKeys ? { extraKeys: opts.extraKeys } : {})}
      {...(opts.extraHelp ? { extraHelp: opts.extraHelp } : {})}
    />,
    {
      stdout,
      stdin,
      exitOnCtrlC: true,
      // Ink 6.8's incremental renderer lands one row low after a frame that ends in a newline (the
      // whole screen shifts); the standard one rewrites the frame in one synchronized write, which
      // terminals show without flicker, and Ink skips the write when nothing changed.
      incrementalRendering: false,
    },
  );
  const stop = () => app.unmount();
  process.once('SIGTERM', stop);
  process.once('SIGHUP', stop);
  try {
    await app.waitUntilExit();
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGHUP', stop);
    if (alt) stdout.write(LEAVE_ALT_SCREEN);
  }
}

/** One plain frame of the overview, everything listed (no height limit), for pipes and scripts. */
export function renderFrame(snapshot: MeshSnapshot, columns = 80): string {
  return renderToString(
    <DashboardView
      snapshot={snapshot}
      reachable
      error={undefined}
      lastUpdated={new Date(snapshot.fetchedAt)}
      now={new Date(snapshot.fetchedAt)}
      width={columns}
      height={Infinity}
      mode="overview"
      help={false}
      selected={undefined}
      interactive={false}
      sourceLabel={snapshot.source}
    />,
    { columns },
  );
}

/** sysexits' EX_UNAVAILABLE, as `meshctl services` exits when a sidecar cannot serve. */
export const SIDECAR_PROBLEM_EXIT = 69;

export type StatusMode = { kind: 'live'; intervalMs: number } | { kind: 'once'; columns: number } | { kind: 'json' };

/** What `meshctl status` does once it has a source. Live, an unreachable registry is shown and retried; a one-shot read that fails throws. */
export async function showStatus(
  source: MeshDataSource,
  mode: StatusMode,
  out: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  if (mode.kind === 'live') return runDashboard(source, { intervalMs: mode.intervalMs });
  const snapshot = await gatherMesh(source);
  out.write(
    mode.kind === 'json' ? `${JSON.stringify(snapshot, null, 2)}\n` : `${renderFrame(snapshot, mode.columns)}\n`,
  );
  // As `meshctl services`: a sidecar on this host that cannot serve its service fails the read.
  if ((snapshot.agent?.sidecarProblems?.length ?? 0) > 0) process.exitCode = SIDECAR_PROBLEM_EXIT;
}
