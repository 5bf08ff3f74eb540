import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Shared two-core machines: keep the worker count small so loopback tests stay responsive.
    pool: 'forks',
    maxWorkers: 2,
  },
});
