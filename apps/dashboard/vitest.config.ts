import { defineConfig } from 'vitest/config';

// Only the source condition: vitest hands these to Node as --conditions, and an explicit 'import'
// there would make require() inside CommonJS dependencies (express) load ESM entries.
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: {
    // src: unit and server tests; e2e: the built page in headless Chromium (needs `pnpm build`),
    // one file at a time (each drives a browser and servers at speed: two at once starve each other).
    projects: [
      { extends: true, test: { name: 'src', include: ['src/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['e2e/**/*.test.ts'], fileParallelism: false } },
    ],
    // One redis-server of the tests' own for the run (or the one ATP_TEST_REDIS_URL names), and no
    // connection to 6379, where a Redis the tests did not start may hold someone's data.
    globalSetup: ['@atp/test-utils/redis-global-setup'],
    setupFiles: ['@atp/test-utils/refuse-default-redis'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

export default vitestConfig;
