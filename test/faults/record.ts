/**
 * One row of the fault table per scenario. Scenarios append their row to the file named by
 * FAULTS_OUT (set by scripts/faults.mjs); run alone (plain vitest), rows are only printed.
 */
import { appendFileSync } from 'node:fs';

export interface FaultRow {
  scenario: string;
  /** What load ran during the fault, e.g. "600 GET at 100/s, 4 at a time". */
  load: string;
  fault: string;
  sent: number;
  failed: number;
  /** Writes the registry acknowledged that were missing afterwards ("—" when the scenario makes none). */
  lostWrites: number | '—';
  expected: string;
  /** PASS / FAIL, or PENDING with why. */
  result: string;
}

export function recordFault(row: FaultRow): void {
  const line = JSON.stringify(row);
  if (process.env.FAULTS_OUT) appendFileSync(process.env.FAULTS_OUT, `${line}\n`);
  else process.stdout.write(`fault row: ${line}\n`);
}

/** Records the row with PASS/FAIL from `ok`, then fails the test when not ok (after recording). */
export function recordAndCheck(row: Omit<FaultRow, 'result'>, ok: boolean, why = ''): void {
  recordFault({ ...row, result: ok ? 'PASS' : `FAIL${why ? ` (${why})` : ''}` });
  if (!ok) throw new Error(`fault scenario "${row.scenario}" failed: ${why || JSON.stringify(row)}`);
}
