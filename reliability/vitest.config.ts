import { defineConfig } from 'vitest/config';

// One scenario at a time: each one loads the machine (2 cores) on purpose, and their figures would
// mean nothing if they ran side by side. The packages are imported through their built entries (what
// users get), so `pnpm test:reliability` builds them first.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // One redis-server of the scenarios' own for the run (or the one ATP_TEST_REDIS_URL names), and
    // no connection to 6379, where a Redis the tests did not start may hold someone's data.
    globalSetup: ['@atp/test-utils/redis-global-setup'],
    setupFiles: ['@atp/test-utils/refuse-default-redis'],
    pool: 'forks',
    fileParallelism: false,
    execArgv: ['--expose-gc'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
  },
});
