#!/usr/bin/env node
// `npm test`: type-check, build (e2e tests run the real compiled CLI), lint and format check, run
// vitest, and end with the one plain line CI reads: `N passed, N failed`, counted from vitest's
// JSON reporter. A lint or format finding counts as one failure but does not stop the tests.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const run = (args) => spawnSync(npx, args, { stdio: 'inherit' }).status ?? 1;

const resultsFile = '.vitest-results.json';
rmSync(resultsFile, { force: true });

let failedSetup = 0;
if (run(['tsc', '-p', 'tsconfig.json', '--noEmit']) !== 0) {
  console.error('type-check failed');
  failedSetup += 1;
}
if (run(['tsc', '-p', 'tsconfig.build.json']) !== 0) {
  console.error('build failed');
  failedSetup += 1;
}

let failedChecks = 0;
if (run(['eslint', '.']) !== 0) {
  console.error('lint failed (npm run lint)');
  failedChecks += 1;
}
if (run(['prettier', '--check', '--log-level', 'warn', '.']) !== 0) {
  console.error('format check failed (npm run format)');
  failedChecks += 1;
}

const extra = process.argv.slice(2);
const status = failedSetup
  ? 1
  : run(['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...extra]);

let passed = 0;
let failed = failedSetup + failedChecks;
try {
  const r = JSON.parse(readFileSync(resultsFile, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  // A file that fails to load has no failed test but still fails the run.
  failed += (r.testResults ?? []).filter(
    (f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0,
  ).length;
} catch {
  if (!failedSetup) failed += 1;
}
if (status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
