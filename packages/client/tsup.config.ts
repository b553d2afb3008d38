import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';

// The protocol's zod-free modules (codes, filters, topics, version) are bundled from its
// sources; with its `"sideEffects": false` the zod schemas never reach the output.
const zodFree = {
  noExternal: ['@atp/ws-protocol'],
  esbuildOptions(options: { conditions?: string[] }) {
    options.conditions = ['@atp/source'];
  },
};

export const tsupConfig = defineConfig([
  {
    ...zodFree,
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    tsconfig: 'tsconfig.build.json',
    clean: ['index.*'],
    sourcemap: true,
    target: 'es2022',
  },
  {
    ...zodFree,
    entry: { browser: 'src/browser.ts' },
    format: ['iife'],
    // terser drops the protocol's unused description tables that esbuild keeps.
    minify: 'terser',
    terserOptions: { compress: { passes: 2, pure_getters: true }, ecma: 2020 },
    clean: ['browser.*'],
    tsconfig: 'tsconfig.build.json',
    // No sourcemap: the server serves this file alone, so a map URL would only 404.
    sourcemap: false,
    target: 'es2022',
    platform: 'browser',
    // The browser build swaps eventemitter3 for the tested subset in src/mini-emitter.ts (1 KB gzipped less).
    esbuildPlugins: [
      {
        name: 'mini-emitter',
        setup(build) {
          const path = fileURLToPath(new URL('./src/mini-emitter.ts', import.meta.url));
          build.onResolve({ filter: /^eventemitter3$/ }, () => ({ path }));
        },
      },
    ],
  },
]);

export default tsupConfig;
