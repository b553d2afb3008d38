import express, { type Router } from 'express';
import type { ExecutionStore } from './executions.js';

/**
 * `GET /api/executions` (suite executions, newest first) and
 * `GET /api/executions/:id` (one suite execution with its tests, or one test
 * execution): the REST state a client refetches after a `sequence_gap`.
 */
export function createExecutionsRouter(store: ExecutionStore): Router {
  const router = express.Router();
  router.get('/api/executions', (_request, response) => {
    const executions = store.list();
    response.set('Cache-Control', 'no-store').json({ executions, total: executions.length });
  });
  router.get('/api/executions/:id', (request, response) => {
    const text = request.params.id;
    if (!/^\d{1,15}$/.test(text)) {
      response
        .status(400)
        .json({ error: 'invalid_id', message: `an execution id is an integer, got '${text}'` });
      return;
    }
    const execution = store.get(Number(text));
    if (!execution) {
      response.status(404).json({ error: 'not_found', message: `no execution ${text}` });
      return;
    }
    response.set('Cache-Control', 'no-store').json(execution);
  });
  return router;
}
