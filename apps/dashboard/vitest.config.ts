import { defineConfig } from 'vitest/config';

// Only the source condition: vitest hands these to Node as --conditions, and an explicit 'import'
// there would make require() inside CommonJS dependencies (express) load ESM entries.
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: {
    // src: unit and server tests; e2e: the built page in headless Chromium (needs `pnpm build`).
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

export default vitestConfig;
