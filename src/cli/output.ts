/** Printing for commands: aligned tables for people, JSON for scripts. */
import { formatTable } from '../util/table.js';

export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

export function printLines(lines: string[]): void {
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
}

export function printTable(headers: string[], rows: string[][], empty = '(none)'): void {
  if (rows.length === 0) {
    printLines([empty]);
    return;
  }
  printLines(formatTable(headers, rows));
}
