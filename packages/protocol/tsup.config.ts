import { defineConfig } from 'tsup';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts', 'src/json-schema.ts', 'src/docs.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: 'tsconfig.build.json',
  clean: true,
  sourcemap: true,
  target: 'es2022',
});

export default tsupConfig;
