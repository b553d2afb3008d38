import { defineConfig } from 'vitest/config';

// Only the source condition (as in @atp/ws-server): the tests import the server, whose dual
// dependencies break when Node is handed an explicit 'import' condition.
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: {
    include: ['src/**/*.test.{ts,tsx}'],
    // Type tests (`*.test-d.ts`) are checked by tsc as part of `vitest run`, not executed.
    typecheck: { enabled: true, include: ['src/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    environment: 'jsdom',
    testTimeout: 20000,
    hookTimeout: 20000,
  },
});

export default vitestConfig;
