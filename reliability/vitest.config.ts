import { defineConfig } from 'vitest/config';

// One scenario at a time: each one loads the machine (2 cores) on purpose, and their figures would
// mean nothing if they ran side by side. The packages are imported through their built entries (what
// users get), so `pnpm test:reliability` builds them first.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    execArgv: ['--expose-gc'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
  },
});
