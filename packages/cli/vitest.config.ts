import { defineConfig } from 'vitest/config';

// Only the source condition: vitest also hands these conditions to Node (`--conditions`), and an
// explicit 'import' there makes Node's require() pick ESM entries of dual packages (express's router
// then gets is-promise's module namespace instead of the function).
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  // The tests spawn the built bin (dist/cli.js) against a hub they start: seconds on a busy machine.
  test: { include: ['src/**/*.test.ts'], testTimeout: 90000, hookTimeout: 30000 },
});

export default vitestConfig;
