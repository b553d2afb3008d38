import { defineConfig } from 'vitest/config';

// Only the source condition: vitest also hands these conditions to Node (`--conditions`), and an
// explicit 'import' there makes Node's require() pick ESM entries of dual packages (express's router
// then gets is-promise's module namespace instead of the function, and every route fails).
const resolve = { conditions: ['@atp/source'] };

/** The protocol tests that run a second time over the SSE fallback (see `transport` in the test helpers). */
export const FALLBACK_SUITES = ['src/__tests__/hub.test.ts', 'src/__tests__/resume.test.ts'];

export const vitestConfig = defineConfig({
  resolve,
  ssr: { resolve },
  test: {
    projects: [
      { resolve, ssr: { resolve }, test: { name: 'websocket', include: ['src/**/*.test.ts'] } },
      {
        resolve,
        ssr: { resolve },
        test: { name: 'sse', include: FALLBACK_SUITES, env: { ATP_TEST_TRANSPORT: 'sse' } },
      },
    ],
  },
});

export default vitestConfig;
