import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.base.js';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts'],
  ...libraryBuild,
});

export default tsupConfig;
