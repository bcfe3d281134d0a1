#!/usr/bin/env node
// `npm run faults`: builds, runs every fault scenario (test/faults/*.fault.ts) against real
// processes, and prints one table of what each did. `--update-doc` also writes the table, the
// command and the date into docs/RELIABILITY.md. Exits 1 when a scenario failed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const args = process.argv.slice(2);
const updateDoc = args.includes('--update-doc');
const extra = args.filter((a) => a !== '--update-doc');

const dir = mkdtempSync(join(tmpdir(), 'meshctl-faults-'));
const out = join(dir, 'rows.jsonl');
const build = spawnSync(npx, ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(1);
const run = spawnSync(npx, ['vitest', 'run', '--config', 'vitest.faults.config.ts', ...extra], {
  stdio: 'inherit',
  env: { ...process.env, FAULTS_OUT: out },
});
const rows = existsSync(out)
  ? readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];
rmSync(dir, { recursive: true, force: true });

const cols = ['scenario', 'load', 'fault', 'requests sent', 'failed', 'acknowledged writes lost', 'expected', 'result'];
const cell = (v) => String(v).replaceAll('|', '\\|');
const table = [
  `| ${cols.join(' | ')} |`,
  `|${cols.map((_, i) => (i >= 3 && i <= 5 ? '--:' : ':--')).join('|')}|`,
  ...rows.map(
    (r) =>
      `| ${[r.scenario, r.load, r.fault, r.sent, r.failed, r.lostWrites, r.expected, r.result].map(cell).join(' | ')} |`,
  ),
].join('\n');
console.log(`\n${table}\n`);
const failedRows = rows.filter((r) => String(r.result).startsWith('FAIL')).length;
console.log(
  `${rows.length} scenarios: ${rows.filter((r) => r.result === 'PASS').length} passed, ${failedRows} failed, ${rows.filter((r) => String(r.result).startsWith('PENDING')).length} pending`,
);

if (updateDoc) {
  const doc = 'docs/RELIABILITY.md';
  const text = readFileSync(doc, 'utf8');
  const begin = '<!-- faults:begin -->';
  const end = '<!-- faults:end -->';
  const stamp = `\`npm run faults\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}:`;
  const block = `${begin}\n${stamp}\n\n${table}\n${end}`;
  writeFileSync(doc, text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), block));
}
process.exit(run.status !== 0 || failedRows > 0 ? 1 : 0);
