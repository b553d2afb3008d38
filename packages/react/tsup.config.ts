import { defineConfig } from 'tsup';
import { libraryBuild, zodFreeProtocol } from '../../tsup.base.js';

export const tsupConfig = defineConfig({
  entry: ['src/index.ts'],
  ...libraryBuild,
  ...zodFreeProtocol,
  external: ['react', 'react/jsx-runtime', '@atp/ws-client'],
  // The hooks and the provider run on the client: mark the module for React Server Components.
  banner: { js: "'use client';" },
});

export default tsupConfig;
