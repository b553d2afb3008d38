import { join } from 'node:path';
import express, { type Router } from 'express';

/**
 * The pages: the built React dashboard (`uiDir`, from `vite build`) at `/`, and
 * the plain pages of `publicDir` (`/plain.html`). Vite's hashed assets are cached
 * for a year; `index.html` is revalidated every time, so a rebuild shows at once.
 * Without a build, `/` says how to make one instead of answering 404.
 */
export function createStaticRouter(uiDir: string, publicDir: string): Router {
  const router = express.Router();
  router.use(
    '/assets',
    express.static(join(uiDir, 'assets'), { immutable: true, maxAge: '365d', fallthrough: true }),
  );
  router.use(express.static(uiDir, { index: 'index.html', maxAge: 0 }));
  router.use(express.static(publicDir));
  router.get('/', (_request, response) => {
    response
      .status(503)
      .type('html')
      .send(
        '<!doctype html><meta charset="utf-8"><title>ATP Dashboard</title>' +
          '<p>The dashboard page is not built yet: run <code>pnpm build</code> in apps/dashboard ' +
          '(<code>pnpm start</code> at the root builds it). Meanwhile: <a href="/plain.html">the plain page</a>, ' +
          '<a href="/api/executions">/api/executions</a>, <a href="/api/ws/info">/api/ws/info</a>.</p>',
      );
  });
  return router;
}
