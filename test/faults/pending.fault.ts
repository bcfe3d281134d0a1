/**
 * Scenarios of #11's fault suite that do not run yet, each with why, so the table says so
 * rather than leaving them out. Move a row from here to its own file when it runs.
 */
import { describe, it } from 'vitest';
import { recordFault } from './record.js';

const pending: Array<{ scenario: string; fault: string; expected: string; why: string }> = [
  {
    scenario: '1,000 agents reconnecting after a registry restart',
    fault: 'restart the registry under 1,000 simulated agents',
    expected: 'backoff with jitter spreads them; registry answers; peak concurrent handshakes measured',
    why: 'not written yet',
  },
];

describe('pending fault scenarios', () => {
  it('are listed in the table with why they do not run', () => {
    for (const p of pending)
      recordFault({
        scenario: p.scenario,
        load: '—',
        fault: p.fault,
        sent: 0,
        failed: 0,
        lostWrites: '—',
        expected: p.expected,
        result: `PENDING: ${p.why}`,
      });
  });
});
