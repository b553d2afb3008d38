import { defineConfig } from 'vitest/config';

export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@atp/source', 'import', 'default'] } },
  test: {
    include: ['src/**/*.test.ts'],
    // One redis-server of the tests' own for the run (or the one ATP_TEST_REDIS_URL names), and no
    // connection to 6379, where a Redis the tests did not start may hold someone's data.
    globalSetup: ['@atp/test-utils/redis-global-setup'],
    setupFiles: ['@atp/test-utils/refuse-default-redis'],
  },
});

export default vitestConfig;
