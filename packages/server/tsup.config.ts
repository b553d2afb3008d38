import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.base.js';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts', 'src/express.ts'],
  ...libraryBuild,
  // import.meta.url in the CJS build (express.ts resolves the browser client through createRequire).
  shims: true,
});

export default tsupConfig;
