import { defineConfig } from 'vitest/config';

export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@atp/source', 'import', 'default'] } },
  test: { include: ['src/**/*.test.ts'], testTimeout: 20000, hookTimeout: 20000 },
});

export default vitestConfig;
