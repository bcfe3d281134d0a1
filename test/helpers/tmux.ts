/**
 * A command in a real terminal: a tmux session on a tmux server of its own (so a test never
 * touches anyone's tmux), read off the screen as a user would see it.
 */
import { rm } from 'node:fs/promises';
import { execa } from 'execa';
import { eventually } from './registry.js';

export interface Terminal {
  /** The visible screen, one line per row. */
  screen(): Promise<string>;
  /** Waits until `pred` holds for the screen and returns it; the error carries the last screen. */
  waitScreen(pred: (s: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  keys(...keys: string[]): Promise<void>;
  resize(columns: number, rows: number): Promise<void>;
  /** Whether the command still runs (the session ends with it). */
  running(): Promise<boolean>;
  /** Ends the tmux server and with it the command, if it still runs; removes the server's socket file. */
  close(): Promise<void>;
}

/** Quotes one word for sh. */
export const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Starts `command` (argv) with exactly `env` (nothing inherited) in a `columns`×`rows` terminal;
 * `after` is shell run once it exits (e.g. to keep its exit code).
 */
export async function startTerminal(opts: {
  name: string;
  command: string[];
  env: Record<string, string>;
  columns: number;
  rows: number;
  after?: string;
}): Promise<Terminal> {
  const server = `meshctl-${opts.name}-${process.pid}`;
  const session = opts.name;
  const tmux = (args: string[]) =>
    execa('tmux', ['-L', server, ...args], {
      reject: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMUX: '' },
      extendEnv: false,
    });
  const envs = Object.entries(opts.env)
    .map(([k, v]) => `${k}=${sh(v)}`)
    .join(' ');
  const line = `env -i ${envs} ${opts.command.map(sh).join(' ')}${opts.after ? `; ${opts.after}` : ''}`;
  const started = await tmux([
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    String(opts.columns),
    '-y',
    String(opts.rows),
    line,
  ]);
  if (started.exitCode !== 0) throw new Error(`tmux new-session failed: ${String(started.stderr)}`);
  // tmux leaves its socket file behind when its server ends: close() removes it, so runs leave nothing in /tmp.
  const socketPath = String((await tmux(['display-message', '-p', '#{socket_path}'])).stdout).trim();
  const screen = async () => String((await tmux(['capture-pane', '-p', '-t', session])).stdout);
  return {
    screen,
    async waitScreen(pred, what, timeoutMs = 20_000) {
      let last = '';
      try {
        return await eventually(
          async () => {
            last = await screen();
            return pred(last) ? last : undefined;
          },
          { timeoutMs, intervalMs: 100, what },
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}; screen:\n${last}`, { cause: e });
      }
    },
    async keys(...keys) {
      await tmux(['send-keys', '-t', session, ...keys]);
    },
    async resize(columns, rows) {
      await tmux(['resize-window', '-t', session, '-x', String(columns), '-y', String(rows)]);
    },
    async running() {
      return (await tmux(['has-session', '-t', session])).exitCode === 0;
    },
    async close() {
      await tmux(['kill-server']);
      if (socketPath.includes(server)) await rm(socketPath, { force: true });
    },
  };
}
