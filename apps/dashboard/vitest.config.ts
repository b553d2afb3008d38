import { defineConfig } from 'vitest/config';

// Only the source condition: vitest hands these to Node as --conditions, and an explicit 'import'
// there would make require() inside CommonJS dependencies (express) load ESM entries.
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: { include: ['src/**/*.test.ts'] },
});

export default vitestConfig;
