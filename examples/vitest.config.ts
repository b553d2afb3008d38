import { defineConfig } from 'vitest/config';

// The examples run as a user runs them (built packages, `node <file>`); the tests themselves import the
// packages' sources, as the other packages' tests do.
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: {
    include: ['__tests__/**/*.test.ts'],
    globalSetup: ['@atp/test-utils/redis-global-setup'],
    setupFiles: ['@atp/test-utils/refuse-default-redis'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

export default vitestConfig;
