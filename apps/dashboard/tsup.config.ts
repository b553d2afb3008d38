import { defineConfig } from 'tsup';

// The server entry only; the packages it uses stay external and are loaded from their builds.
export const tsupConfig = defineConfig({
  entry: { 'server/main': 'src/server/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  clean: ['server'],
  sourcemap: true,
  splitting: false,
});

export default tsupConfig;
