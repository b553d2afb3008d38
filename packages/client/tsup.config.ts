import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';
import { libraryBuild, zodFreeProtocol } from '../../tsup.base.js';

export const tsupConfig = defineConfig([
  {
    ...libraryBuild,
    ...zodFreeProtocol,
    entry: ['src/index.ts'],
    clean: ['index.*'],
  },
  {
    ...zodFreeProtocol,
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
    // The browser build swaps eventemitter3 for the tested subset in src/mini-emitter.ts (1 KB gzipped
    // less), and the per-subscription routing and local history for a stand-in that keeps nothing.
    esbuildPlugins: [
      {
        name: 'browser-swaps',
        setup(build) {
          const emitter = fileURLToPath(new URL('./src/mini-emitter.ts', import.meta.url));
          const history = fileURLToPath(new URL('./src/history.browser.ts', import.meta.url));
          build.onResolve({ filter: /^eventemitter3$/ }, () => ({ path: emitter }));
          build.onResolve({ filter: /^\.\/history\.js$/ }, () => ({ path: history }));
        },
      },
    ],
  },
]);

export default tsupConfig;
