import type { Options } from 'tsup';

/** What every publishable package's build shares: ESM + CJS + `.d.ts` from `tsconfig.build.json`. */
export const libraryBuild = {
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: 'tsconfig.build.json',
  clean: true,
  sourcemap: true,
  target: 'es2022',
} satisfies Options;

/**
 * Bundles the protocol's zod-free modules (codes, filters, topics, version) from its sources into a
 * browser-facing package; with the protocol's `"sideEffects": false` the zod schemas never reach the output.
 */
export const zodFreeProtocol = {
  noExternal: ['@atp/ws-protocol'],
  esbuildOptions(options: { conditions?: string[] }) {
    options.conditions = ['@atp/source'];
  },
} satisfies Options;
