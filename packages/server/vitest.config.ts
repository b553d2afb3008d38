import { defineConfig } from 'vitest/config';

// Only the source condition: vitest also hands these conditions to Node (`--conditions`), and an
// explicit 'import' there makes Node's require() pick ESM entries of dual packages (express's router
// then gets is-promise's module namespace instead of the function, and every route fails).
export const vitestConfig = defineConfig({
  resolve: { conditions: ['@atp/source'] },
  ssr: { resolve: { conditions: ['@atp/source'] } },
  test: { include: ['src/**/*.test.ts'] },
});

export default vitestConfig;
