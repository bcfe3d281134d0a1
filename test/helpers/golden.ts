/**
 * Golden files (Linkerd's testdata/*.golden): a command's output is compared with the file as it
 * is; UPDATE_GOLDEN=1 rewrites the files instead, for an intended change (review the diff).
 * A missing file fails the test: nothing is written unless asked.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const TESTDATA = fileURLToPath(new URL('../cli/testdata/', import.meta.url));

export async function expectGolden(name: string, actual: string): Promise<void> {
  const file = join(TESTDATA, `${name}.golden`);
  if (process.env.UPDATE_GOLDEN === '1') {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, actual);
    return;
  }
  const expected = await readFile(file, 'utf8').catch(() => undefined);
  if (expected === undefined) throw new Error(`no golden file ${file}: run the test with UPDATE_GOLDEN=1 to write it`);
  expect(actual, `${name}.golden (UPDATE_GOLDEN=1 rewrites it)`).toBe(expected);
}

const TIME_RE = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;

/**
 * Replaces what differs between runs (secrets, fingerprints, times, ids) by placeholders of the
 * same length where it sits in a table, so a golden still shows the columns as a user sees them.
 * `replacements` first: a run's own strings (its temp dir, its registry URL).
 */
export function scrub(text: string, replacements: ReadonlyArray<readonly [string, string]> = []): string {
  let out = text;
  for (const [from, to] of replacements) if (from) out = out.split(from).join(to);
  return (
    out
      .replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '<PEM>')
      .replace(/msh_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/g, '<TOKEN>')
      .replace(/\b([0-9A-F]{2}:){31}[0-9A-F]{2}\b/g, '<FINGERPRINT>')
      // Certificate serials: random uppercase hex.
      .replace(/\b[0-9A-F]{16,40}\b/g, '<SERIAL>')
      .replace(TIME_RE, (t) => t.replace(/\d/g, '0'))
  );
}

/**
 * A table's rows in a stable order (the store lists some things by their random ids): by the row
 * without its ids and times, then by `label` of its ids (what a test already calls them).
 */
export function sortRows(text: string, label: (id: string) => string = () => ''): string {
  const key = (row: string) => {
    const labels = (row.match(/\b[0-9a-f]{16}\b/g) ?? []).map(label).join(' ');
    return `${row.replace(/\b[0-9a-f]{16}\b/g, '').replace(TIME_RE, '')}\u0000${labels}`;
  };
  const [head = '', ...rows] = text.split('\n');
  return [head, ...rows.sort((a, b) => key(a).localeCompare(key(b)))].join('\n');
}
