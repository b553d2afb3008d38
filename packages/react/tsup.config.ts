import { defineConfig } from 'tsup';
import { libraryBuild, zodFreeProtocol } from '../../tsup.base.js';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts'],
  ...libraryBuild,
  ...zodFreeProtocol,
  external: ['react', 'react/jsx-runtime', '@atp/ws-client'],
});

export default tsupConfig;
