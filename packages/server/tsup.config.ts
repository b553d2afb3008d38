import { defineConfig } from 'tsup';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts', 'src/express.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: 'tsconfig.build.json',
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // import.meta.url in the CJS build (express.ts resolves the browser client through createRequire).
  shims: true,
});

export default tsupConfig;
