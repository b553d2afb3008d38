import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `vite build` writes the React page to dist/ui, which the Express app serves at `/`.
// `vite` (pnpm dev:ui) serves it with hot reload and proxies the API and the WebSocket
// to a dashboard server started with `pnpm serve` (DASHBOARD_URL, default http://localhost:8000).
const target = process.env.DASHBOARD_URL ?? 'http://localhost:8000';

export const viteConfig = defineConfig({
  plugins: [react()],
  // public/ holds pages that Express serves as they are (plain.html): Vite does not copy it.
  publicDir: false,
  build: {
    outDir: 'dist/ui',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    proxy: {
      '/api/ws/updates': { target, ws: true },
      '/api': target,
      '/static': target,
      '/plain.html': target,
    },
  },
});

export default viteConfig;
