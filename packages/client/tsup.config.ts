import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';
import { libraryBuild, zodFreeProtocol } from '../../tsup.base.js';

/** Properties only the client's own modules read and write: safe to rename in the IIFE. */
const INTERNAL_PROPERTIES =
  /^(historyWanted|onServer|messageListeners|batchListeners|errorListeners|resumeFrom|refused|settled|released|backlog|held|owned|observePosition|expectReplay|beginConnection|resumePayload|onSubscribed|onResumed|onData|plainRefs|resetSent|setState|opened|alive|probe|attach|deliver|entry|pending|sent|first|target|left|key|list|restart|reset|start|stop|interval|timeout|dead|ping|frame|emit|replay|gap|release)$/;

/**
 * Class members that only the ESM/CJS builds have sit between `// #region ESM/CJS only` and
 * `// #endregion` (a class member cannot be left out by `if (FULL)`): the IIFE build removes
 * those lines from the client's sources before compiling them. Unbalanced markers fail the build.
 */
export function withoutEsmOnlyRegions(source: string, path: string): string {
  const kept: string[] = [];
  let inside = false;
  for (const line of source.split('\n')) {
    if (/^\s*\/\/ #region ESM\/CJS only\b/.test(line)) {
      if (inside) throw new Error(`${path}: nested '#region ESM/CJS only'`);
      inside = true;
    } else if (inside && /^\s*\/\/ #endregion\b/.test(line)) {
      inside = false;
    } else if (!inside) {
      kept.push(line);
    }
  }
  if (inside) throw new Error(`${path}: '#region ESM/CJS only' without its '#endregion'`);
  return kept.join('\n');
}

export const tsupConfig = defineConfig([
  {
    ...libraryBuild,
    ...zodFreeProtocol,
    entry: ['src/index.ts', 'src/fallback.ts'],
    clean: ['index.*', 'fallback.*'],
  },
  {
    // The SSE fallback as a script of its own: pages that need it load it next to the main one.
    entry: { fallback: 'src/fallback.browser.ts' },
    format: ['iife'],
    minify: 'terser',
    terserOptions: { compress: { passes: 2, pure_getters: true }, ecma: 2020 },
    clean: ['fallback.global.*'],
    tsconfig: 'tsconfig.build.json',
    sourcemap: false,
    target: 'es2022',
    platform: 'browser',
    noExternal: ['eventsource-parser', 'eventemitter3'],
    esbuildPlugins: [
      {
        name: 'browser-swaps',
        setup(build) {
          const emitter = fileURLToPath(new URL('./src/mini-emitter.ts', import.meta.url));
          build.onResolve({ filter: /^eventemitter3$/ }, () => ({ path: emitter }));
        },
      },
    ],
  },
  {
    ...zodFreeProtocol,
    entry: { browser: 'src/browser.ts' },
    format: ['iife'],
    // terser drops the protocol's unused description tables that esbuild keeps.
    minify: 'terser',
    terserOptions: {
      compress: { passes: 2, pure_getters: true },
      ecma: 2020,
      // Renames the client's internal bookkeeping properties (never a public or wire name, nor one the
      // client reads from a builtin or DOM object: each of these is the client's own), about 220 bytes
      // gzipped. `builtins`: some of them (start, stop, reset, …) are also DOM property names, which
      // terser otherwise leaves alone; the client never reads those from a DOM object.
      mangle: { properties: { regex: INTERNAL_PROPERTIES, builtins: true } },
    },
    clean: ['browser.*'],
    tsconfig: 'tsconfig.build.json',
    // No sourcemap: the server serves this file alone, so a map URL would only 404.
    sourcemap: false,
    target: 'es2022',
    platform: 'browser',
    // The browser build swaps eventemitter3 for the tested subset in src/tiny-emitter.ts (1 KB gzipped
    // less), the per-subscription routing and local history for a stand-in that keeps nothing, and
    // `FULL` for `false`, so that the ESM/CJS-only features are dropped (see src/features.ts), and
    // leaves out the class members marked ESM/CJS only (see withoutEsmOnlyRegions).
    esbuildPlugins: [
      {
        name: 'browser-swaps',
        setup(build) {
          const emitter = fileURLToPath(new URL('./src/tiny-emitter.ts', import.meta.url));
          const history = fileURLToPath(new URL('./src/history.browser.ts', import.meta.url));
          const features = fileURLToPath(new URL('./src/features.browser.ts', import.meta.url));
          build.onResolve({ filter: /^eventemitter3$/ }, () => ({ path: emitter }));
          build.onResolve({ filter: /^\.\/history\.js$/ }, () => ({ path: history }));
          build.onResolve({ filter: /^\.\/features\.js$/ }, () => ({ path: features }));
          const sources = fileURLToPath(new URL('./src/', import.meta.url));
          build.onLoad({ filter: /\.ts$/ }, async ({ path }) =>
            path.startsWith(sources)
              ? { contents: withoutEsmOnlyRegions(await readFile(path, 'utf8'), path), loader: 'ts' }
              : undefined,
          );
        },
      },
    ],
  },
]);

export default tsupConfig;
