import { configDefaults, defineConfig } from 'vitest/config';

const FLEET = 'test/fleet*.test.ts';
// What both projects share (they do not extend the root, so the root's globalSetup runs once, not per project).
const shared = {
  testTimeout: 60_000,
  hookTimeout: 30_000,
  // Shared two-core machines: keep the worker count small so loopback tests stay responsive.
  pool: 'forks',
  maxWorkers: 2,
} as const;

export default defineConfig({
  test: {
    // Builds dist/ once, for the tests that run the CLI as a subprocess (node dist/cli/main.js).
    globalSetup: './test/global-setup.ts',
    ...shared,
    // The fleet tests run worker processes that take both cores for a while: they run after the rest, so
    // tests with time guardrails (JSONata evaluation timeouts, soak bounds) never share the CPU with them.
    projects: [
      { test: { ...shared, name: 'main', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, FLEET], sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'fleet', include: [FLEET], sequence: { groupOrder: 1 } } },
    ],
  },
});
