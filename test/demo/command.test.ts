import { describe, expect, it } from 'vitest';
import { summaryLines } from '../../src/demo/command.js';

describe('the headless demo summary', () => {
  it('is an aligned table whatever the width of the names, and says whether the mesh worked', () => {
    const lines = summaryLines({
      durationSeconds: 5,
      web: {
        requests: 1234,
        ok: 1234,
        failed: 0,
        byStatus: { '200': 1234 },
        byInstance: { 'api-1': 600, 'api-2': 634 },
        p50Ms: 7.26,
        p99Ms: 27.2,
        maxMs: 40,
      },
      apiInstances: { 'api-2': 634, 'api-1': 600 },
      successRate: 1,
      worked: true,
    });
    expect(lines.slice(2, 6)).toEqual([
      'SERVICE      REQUESTS  SUCCESS  P50    P99',
      'web          1234      100.0%   7.3ms  27.2ms',
      'api (api-1)  600',
      'api (api-2)  634',
    ]);
    expect(lines).toContain('answers by status: 200: 1234');
    expect(lines.at(-1)).toMatch(/^The mesh worked/);
  });

  it('says so when the mesh did not work', () => {
    const lines = summaryLines({
      durationSeconds: 5,
      web: {
        requests: 10,
        ok: 2,
        failed: 8,
        byStatus: { '200': 2, '502': 8 },
        byInstance: { 'api-1': 2 },
        p50Ms: 1,
        p99Ms: 2,
        maxMs: 3,
      },
      apiInstances: { 'api-1': 2 },
      successRate: 0.2,
      worked: false,
    });
    expect(lines).toContain('web          10        20.0%    1.0ms  2.0ms');
    expect(lines.at(-1)).toMatch(/did NOT work/);
  });
});
