import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.base.js';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts', 'src/json-schema.ts', 'src/asyncapi.ts', 'src/docs.ts'],
  ...libraryBuild,
});

export default tsupConfig;
