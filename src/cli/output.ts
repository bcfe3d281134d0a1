/** Printing for commands: aligned tables for people, JSON for scripts. */
import { formatTable } from '../util/table.js';

export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

export function printLines(lines: string[]): void {
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
}

/** A table's lines, or the one line `empty` says when there are no rows. */
export function tableLines(headers: string[], rows: string[][], empty = '(none)'): string[] {
  return rows.length === 0 ? [empty] : formatTable(headers, rows);
}
