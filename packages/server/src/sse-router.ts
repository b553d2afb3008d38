import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { FallbackSocket } from './fallback-socket.js';
import type { ATPWebSocketServer } from './hub.js';

/** What the fallback router needs of the hub: {@link ATPWebSocketServer} fits. */
export type FallbackHub = Pick<ATPWebSocketServer, 'acceptFallback'>;

/** Options of {@link createATPFallbackRouter}. */
export interface ATPFallbackRouterOptions {
  /** Largest POST body in bytes (one or more messages); bigger ones answer 413. @default 1048576 */
  maxBodyBytes?: number;
  /** Interval of the SSE comments that keep proxies from closing a quiet stream, ms. @default 15000 */
  keepAliveMs?: number;
}

/** Where the fallback's endpoints are. */
export const FALLBACK_STREAM_PATH = '/api/ws-sse/updates';
/** Prefix of a session's POST endpoints: `${FALLBACK_SESSIONS_PATH}/<session>` and `…/<session>/pong`. */
export const FALLBACK_SESSIONS_PATH = '/api/ws-sse/sessions';

const SESSION_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/**
 * The fallback transport for clients whose WebSocket upgrades are blocked (a
 * proxy that drops or stalls them): the same protocol, carried by a
 * Server-Sent Events stream (server to client) and HTTP POSTs (client to
 * server). Every connection is a hub connection like any other: same
 * `sequence`, resume and gaps (also across a switch of transport, by
 * `client_id`), limits, authentication, Origin policy, heartbeat and
 * `/api/ws/clients` entry (with `transport: 'sse'`).
 *
 * - `GET /api/ws-sse/updates?client_id=…&token=…` → `text/event-stream`: first an `open` event with
 *   `{ session }`, then one `message` event per protocol frame (its JSON in `data`), `ping` events
 *   (heartbeat, hex payload), and a `close` event `{ code, reason }` before the stream ends. Refused
 *   like an upgrade: 400, 401, 403, 429, 503 with a text reason.
 * - `POST /api/ws-sse/sessions/<session>`: one protocol message per line → 202 `{ received }`;
 *   404 `unknown_session` once the stream is gone, 413 over `maxBodyBytes` or with a message over
 *   the hub's `maxPayload` (which also closes the connection with 1009, as on a WebSocket).
 * - `POST /api/ws-sse/sessions/<session>/pong` with the `ping` event's hex payload → 204.
 *
 * A session lives as long as its stream: when the stream ends (client gone, dead peer cut by the
 * heartbeat, server close), its id is forgotten at once, so abandoned sessions hold nothing.
 *
 * @example
 * const app = express();
 * const server = app.listen(8000);
 * const hub = createATPWebSocketServer({ server });
 * app.use(createATPRouter(hub, {}));
 * app.use(createATPFallbackRouter(hub));
 */
export function createATPFallbackRouter(hub: FallbackHub, options: ATPFallbackRouterOptions = {}): Router {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new TypeError(`option maxBodyBytes must be a positive integer, got ${String(maxBodyBytes)}`);
  }
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  if (!Number.isFinite(keepAliveMs) || keepAliveMs <= 0) {
    throw new TypeError(`option keepAliveMs must be a positive number, got ${String(keepAliveMs)}`);
  }
  const sessions = new Map<string, FallbackSocket>();
  const router = express.Router();

  router.get(FALLBACK_STREAM_PATH, async (request: Request, response: Response) => {
    // Express routes HEAD here too: a HEAD has no body to carry a stream, so it opens no connection.
    if (request.method === 'HEAD') {
      response.status(405).set({ Allow: 'GET', 'Cache-Control': 'no-store' }).end();
      return;
    }
    const sessionId = randomBytes(16).toString('base64url');
    const socket = new FallbackSocket(response, sessionId, keepAliveMs);
    const refusal = await hub.acceptFallback(request, socket);
    if (refusal) {
      if (!response.headersSent && !response.destroyed) {
        response
          .status(refusal.status)
          .set({ 'Cache-Control': 'no-store', ...refusal.headers })
          .type('text/plain')
          .send(`${refusal.reason}\n`);
      }
      return;
    }
    sessions.set(sessionId, socket);
    socket.once('close', () => sessions.delete(sessionId));
  });

  const session = (request: Request, response: Response): FallbackSocket | undefined => {
    const id = String(request.params.session);
    const socket = SESSION_PATTERN.test(id) ? sessions.get(id) : undefined;
    if (socket?.readyState !== 1) {
      response.status(404).json({
        error: 'unknown_session',
        message: 'no open fallback stream has this session id (it ended or never existed): open a new stream',
      });
      return undefined;
    }
    return socket;
  };
  // Before a body is read: 404 for an unknown session, 429 while a POST of the same kind is being read
  // for it, so that what a client can make the server hold is one body per session and kind.
  const inFlight = new Set<string>();
  const admit = (kind: string) => (request: Request, response: Response, next: NextFunction) => {
    if (!session(request, response)) return;
    const key = `${kind} ${String(request.params.session)}`;
    if (inFlight.has(key)) {
      response.status(429).json({
        error: 'post_in_progress',
        message: 'one POST at a time per session: wait for the answer to the previous one',
      });
      return;
    }
    inFlight.add(key);
    response.once('close', () => inFlight.delete(key));
    next();
  };
  const textBody = (limit: number) => express.text({ type: () => true, limit, defaultCharset: 'utf-8' });
  const body = [admit('messages'), express.raw({ type: () => true, limit: maxBodyBytes })];
  const pong = [admit('pong'), textBody(1024)]; // a pong is at most 128 hex digits

  router.post(`${FALLBACK_SESSIONS_PATH}/:session`, body, (request: Request, response: Response) => {
    const socket = session(request, response);
    if (!socket) return;
    let text = '';
    try {
      // UTF-8 only, as WebSocket text frames: invalid bytes close the connection with 1007, as there.
      if (Buffer.isBuffer(request.body))
        text = new TextDecoder('utf-8', { fatal: true }).decode(request.body);
    } catch {
      socket.close(1007, 'invalid UTF-8');
      response.status(400).json({
        error: 'invalid_utf8',
        message: 'the body is not valid UTF-8: the connection was closed with 1007',
      });
      return;
    }
    const frames = text.split('\n').filter((line) => line.trim() !== '');
    if (!socket.receive(frames)) {
      response.status(413).json({
        error: 'message_too_large',
        message: `a message is over ${socket.maxPayload} bytes: the connection was closed with 1009`,
      });
      return;
    }
    response.status(202).json({ received: frames.length });
  });

  router.post(`${FALLBACK_SESSIONS_PATH}/:session/pong`, pong, (request: Request, response: Response) => {
    const socket = session(request, response);
    if (!socket) return;
    const hex = typeof request.body === 'string' ? request.body.trim() : '';
    if (!/^[0-9a-f]{1,128}$/i.test(hex)) {
      response
        .status(400)
        .json({ error: 'invalid_pong', message: "the body must be the ping event's hex data" });
      return;
    }
    socket.receivePong(hex);
    response.status(204).end();
  });

  router.use(
    FALLBACK_SESSIONS_PATH,
    (error: unknown, _request: Request, response: Response, next: NextFunction) => {
      const status = (error as { status?: number; type?: string }).status;
      if (status === 413) {
        response.status(413).json({
          error: 'body_too_large',
          message: `the body is over ${(error as { limit?: number }).limit ?? maxBodyBytes} bytes; send fewer messages per request`,
        });
        return;
      }
      if (status !== undefined && status >= 400 && status < 500) {
        response.status(status).json({ error: 'invalid_body', message: String((error as Error).message) });
        return;
      }
      next(error);
    },
  );

  return router;
}
