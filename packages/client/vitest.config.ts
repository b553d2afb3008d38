import { defineConfig } from 'vitest/config';

export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 20000,
    hookTimeout: 20000,
    // Type tests (`*.test-d.ts`) are checked by tsc as part of `vitest run`, not executed.
    typecheck: { enabled: true, include: ['src/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
});

export default vitestConfig;
