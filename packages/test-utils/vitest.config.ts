import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    setupFiles: ['./src/refuse-default-redis.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
