import { defineConfig } from 'vitest/config';

/** `npm run faults`: the fault scenarios (test/faults/*.fault.ts), one file at a time (they share loopback blocks). */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.fault.ts'],
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    // Each scenario bounds its own load; these are outer bounds on real processes.
    testTimeout: 180_000,
    hookTimeout: 90_000,
    teardownTimeout: 30_000,
  },
});
