import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

// The minimal example's React page, bundled for the browser into minimal/dist with its index.html.
export const tsupConfig = defineConfig({
  entry: { app: 'minimal/app.tsx' },
  outDir: 'minimal/dist',
  format: ['esm'],
  platform: 'browser',
  target: 'es2022',
  noExternal: [/.*/],
  minify: true,
  clean: true,
  env: { NODE_ENV: 'production' },
  esbuildOptions(options) {
    options.jsx = 'automatic';
  },
  onSuccess: async () => cpSync('minimal/index.html', 'minimal/dist/index.html'),
});

export default tsupConfig;
