/**
 * A terminal-sized stand-in for Ink's streams (ink-testing-library's stdout has no rows and
 * cannot resize): frames are recorded, the size can change with a `resize` event, and keys go in
 * through stdin as a terminal would send them.
 */
import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import type { ReactElement } from 'react';
import { render, type Instance } from 'ink';

export const KEYS = {
  up: '\u001B[A',
  down: '\u001B[B',
  right: '\u001B[C',
  left: '\u001B[D',
  enter: '\r',
  escape: '\u001B',
  tab: '\t',
  shiftTab: '\u001B[Z',
} as const;

export class FakeStdout extends EventEmitter {
  frames: string[] = [];
  constructor(
    public columns = 80,
    public rows = 24,
  ) {
    super();
  }
  write = (frame: string): boolean => {
    this.frames.push(frame);
    return true;
  };
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

export class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  write(data: string): void {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  }
  read = (): string | null => {
    const d = this.data;
    this.data = null;
    return d;
  };
  setEncoding(): void {}
  setRawMode(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
}

export interface TestTerminal {
  app: Instance;
  stdout: FakeStdout;
  stdin: FakeStdin;
  /** The last frame, without colours. */
  screen(): string;
  press(key: string): void;
  /** Waits (bounded) until the screen satisfies `pred`; the error shows the screen. */
  waitFor(pred: (screen: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
}

export function renderInTerminal(tree: ReactElement, size: { columns?: number; rows?: number } = {}): TestTerminal {
  const stdout = new FakeStdout(size.columns, size.rows);
  const stdin = new FakeStdin();
  // debug: every render is written whole, so the last write is the current screen.
  const app = render(tree, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const screen = () => stripVTControlCharacters(stdout.frames.at(-1) ?? '');
  return {
    app,
    stdout,
    stdin,
    screen,
    press: (key) => stdin.write(key),
    async waitFor(pred, what, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = screen();
        if (pred(s)) return s;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${s}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** Every line of a frame fits the width, and there are at most `rows` lines. */
export function fits(frame: string, columns: number, rows: number): boolean {
  const lines = frame.replace(/\n$/, '').split('\n');
  return lines.length <= rows && lines.every((l) => [...l].length <= columns);
}
