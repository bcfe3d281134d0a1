import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // Tests start real servers and processes; the CI box has two cores.
    pool: 'forks',
    maxWorkers: 2,
    // Bounds, not timing assertions: end-to-end tests start real processes on a shared 2-core box.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
  },
});
