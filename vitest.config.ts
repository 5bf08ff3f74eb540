import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ once, for the tests that run the CLI as a subprocess (node dist/cli/main.js).
    globalSetup: './test/global-setup.ts',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Shared two-core machines: keep the worker count small so loopback tests stay responsive.
    pool: 'forks',
    maxWorkers: 2,
  },
});
