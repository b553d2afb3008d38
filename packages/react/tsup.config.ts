import { defineConfig } from 'tsup';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: 'tsconfig.build.json',
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: ['react', 'react/jsx-runtime', '@atp/ws-client'],
  // Like @atp/ws-client: the protocol's zod-free helpers (canonicalSubscriptionKey,
  // matchesSubscription) are bundled from its sources, so zod never reaches a browser bundle.
  noExternal: ['@atp/ws-protocol'],
  esbuildOptions(options) {
    options.conditions = ['@atp/source'];
  },
});

export default tsupConfig;
