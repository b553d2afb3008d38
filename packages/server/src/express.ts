import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { type DataMessage, ErrorCode, parseDataMessage, ProtocolError } from '@atp/ws-protocol';
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import type { ATPWebSocketServer } from './hub.js';
import { publishCheckedKey } from './publish-checked.js';
import { ResourceError, resourceErrorStatus } from './resources.js';

/** What the router needs of the hub: {@link ATPWebSocketServer} fits. */
export type RouterHub = Pick<
  ATPWebSocketServer,
  'info' | 'clients' | 'publish' | 'metrics' | 'metricsContentType'
> &
  Partial<Pick<ATPWebSocketServer, 'resources'>>;

/** Options of {@link createATPRouter}. An endpoint whose token is unset answers 404 (disabled), never open. */
export interface ATPRouterOptions {
  /** Bearer token of `GET /api/ws/clients` and `GET /api/ws/metrics`. Unset: both answer 404. */
  adminToken?: string;
  /** Bearer token of `POST /api/ws/publish`. Unset: it answers 404. */
  publishToken?: string;
  /** Largest `POST /api/ws/publish` body in bytes; bigger ones answer 413. @default 1048576 */
  maxBodyBytes?: number;
  /**
   * Path of the browser client's IIFE build served at `/static/v2/js/websocket.js`,
   * or `false` to not serve it (404).
   * @default the file `@atp/ws-client/browser.global.js` resolves to; `@atp/ws-client` is an
   * optional peer dependency of this package, to install for this default
   */
  clientScript?: string | false;
  /** `Cache-Control: max-age` of the browser script, seconds (revalidated with its ETag after that). @default 600 */
  clientScriptMaxAgeSeconds?: number;
}

/** One problem of a `POST /api/ws/publish` body. */
export interface PublishIssue {
  /** Index of the message in the body (0 for a single message); `null` when the body as a whole is wrong. */
  index: number | null;
  /** Dotted path inside that message, e.g. `payload.progress_percent`. */
  path: string;
  message: string;
}

/** Body of a 4xx/5xx answer of the router. */
export interface RouterErrorBody {
  error: string;
  message: string;
  issues?: PublishIssue[];
}

/** The URL the AsyncAPI 3 document of the protocol is served at. */
export const ASYNCAPI_PATH = '/api/ws/asyncapi.json';

/** The URL the browser client's IIFE build is served at. */
export const CLIENT_SCRIPT_PATH = '/static/v2/js/websocket.js';

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_SCRIPT_MAX_AGE_SECONDS = 600;
const REALM = 'atp-ws';

/**
 * The REST routes (docs/PROTOCOL.md and the package README) as an Express 5 router, mounted at the
 * root of the app:
 *
 * - `GET /api/ws/info` → `{ url, ping_interval, ping_timeout }`; `X-Forwarded-Proto` / `X-Forwarded-Host`
 *   count only from a peer the hub's `trustProxy` trusts (the app's `trust proxy` setting is not read)
 * - `GET /api/ws/clients` (admin token) → `{ clients, total }`
 * - `POST /api/ws/publish` (publish token) → 202 `{ accepted }`; 400 `invalid_json` / `invalid_message`
 *   (nothing of the request published), 401, 413, 415, 503 when the broker is unavailable
 * - `GET /api/ws/metrics` (admin token) → Prometheus text
 * - `GET /api/ws/resources/:kind/:id` → a resource snapshot `{ kind, resource_id, data, version?, epoch, offset }`;
 *   400 `invalid_message`, 403 `forbidden`, 404 `unknown_resource` / `resource_not_found`, 503 `resource_unavailable`
 * - `GET /api/ws/asyncapi.json` → the AsyncAPI 3 document of the protocol (`@atp/ws-protocol/asyncapi.json`)
 * - `GET /static/v2/js/websocket.js` → the browser client (global `ATPWebSocket`), with ETag and Cache-Control
 *
 * Tokens are compared in constant time; an endpoint whose token is unset answers 404.
 *
 * @example
 * import express from 'express';
 * import { createATPWebSocketServer } from '@atp/ws-server';
 * import { createATPRouter } from '@atp/ws-server/express';
 *
 * const app = express();
 * const server = app.listen(8000);
 * const hub = createATPWebSocketServer({ server });
 * app.use(createATPRouter(hub, {
 *   adminToken: process.env.ATP_WS_ADMIN_TOKEN,
 *   publishToken: process.env.ATP_WS_PUBLISH_TOKEN,
 * }));
 */
export function createATPRouter(hub: RouterHub, options: ATPRouterOptions = {}): Router {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new TypeError(`option maxBodyBytes must be a positive integer, got ${String(maxBodyBytes)}`);
  }
  const maxAge = options.clientScriptMaxAgeSeconds ?? DEFAULT_SCRIPT_MAX_AGE_SECONDS;
  if (!Number.isInteger(maxAge) || maxAge < 0) {
    throw new TypeError(`option clientScriptMaxAgeSeconds must be an integer >= 0, got ${String(maxAge)}`);
  }
  const requireAdmin = bearerGuard(options.adminToken, 'admin');
  const requirePublisher = bearerGuard(options.publishToken, 'publish');
  const router = express.Router();

  router.get('/api/ws/info', (request, response) => {
    response.set('Cache-Control', 'no-store').json(hub.info(request));
  });

  router.get('/api/ws/clients', requireAdmin, async (_request, response) => {
    const clients = await hub.clients();
    response.set('Cache-Control', 'no-store').json({ clients, total: clients.length });
  });

  router.get('/api/ws/metrics', requireAdmin, async (_request, response) => {
    const text = await hub.metrics();
    response.set('Cache-Control', 'no-store').type(hub.metricsContentType).send(text);
  });

  router.get('/api/ws/resources/:kind/:id', async (request, response) => {
    const resources = hub.resources;
    try {
      if (!resources) throw new ResourceError(ErrorCode.UnknownResource, 'this hub has no resources');
      // Checked and serialized by the registry: an answer that cannot be sent is a 503 like a failing provider.
      const answer = await resources.answer(request.params.kind, request.params.id, null);
      response.set('Cache-Control', 'no-store').type('application/json').send(answer.json);
    } catch (error) {
      // Always JSON: never the default HTML error page.
      const known = error instanceof ResourceError;
      const body: RouterErrorBody = known
        ? { error: error.code, message: error.message }
        : { error: ErrorCode.InternalError, message: 'the server failed answering this resource request' };
      response
        .status(known ? resourceErrorStatus[error.code] : 500)
        .set('Cache-Control', 'no-store')
        .json(body);
    }
  });

  // A kind or id that is not valid percent-encoding fails in Express's own decoding, before the route.
  router.use(
    '/api/ws/resources',
    (error: unknown, _request: Request, response: Response, next: NextFunction) => {
      if (!(error instanceof URIError)) return next(error);
      sendError(response, 400, {
        error: ErrorCode.InvalidMessage,
        message: 'the resource kind or id is not valid percent-encoding',
      });
    },
  );

  router.post(
    '/api/ws/publish',
    requirePublisher,
    requireJson,
    // strict: false so that `"a string"` is refused by the schema (invalid_message), not as malformed JSON.
    express.json({ limit: maxBodyBytes, strict: false, type: isJsonContentType }),
    async (request: Request, response: Response) => {
      const checked = validatePublishBody(request.body);
      if (!checked.ok) return sendError(response, 400, checked.error);
      try {
        await publishChecked(hub, checked.messages);
      } catch (error) {
        if (error instanceof ProtocolError) {
          // The hub's own check disagreed with ours: still a client error, and nothing was published.
          return sendError(response, 400, {
            error: ErrorCode.InvalidMessage,
            message: error.message,
            issues: error.issues.map((issue) => ({ index: null, ...issue })),
          });
        }
        return sendError(response, 503, {
          error: errorCode(error) ?? 'unavailable',
          message: `messages could not be published: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
      response.status(202).json({ accepted: checked.messages.length });
    },
    bodyParserErrors,
  );

  const asyncApi = new AsyncApiDocument();
  router.get(ASYNCAPI_PATH, (_request, response, next) => {
    asyncApi
      .load()
      .then((body) => response.set('Cache-Control', 'no-cache').type('application/json').send(body), next);
  });

  if (options.clientScript !== false) {
    const script = new ClientScript(options.clientScript, maxAge);
    router.get(CLIENT_SCRIPT_PATH, (request, response) => script.serve(request, response));
  }

  return router;
}

// ── bearer tokens ──────────────────────────────────────────────────────────

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Middleware that lets through requests with `Authorization: Bearer <token>`.
 * Both sides are hashed first so `timingSafeEqual` compares equal lengths and
 * the time taken says nothing about the token, not even its length.
 */
function bearerGuard(token: string | undefined, what: string): RequestHandler {
  if (token === undefined || token === '') {
    return (_request, response) => {
      sendError(response, 404, { error: 'not_found', message: `disabled: no ${what} token is configured` });
    };
  }
  const expected = digest(token);
  return (request, response, next) => {
    const header = request.get('authorization');
    const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const given = match?.[1];
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return next();
    const challenge =
      given === undefined ? `Bearer realm="${REALM}"` : `Bearer realm="${REALM}", error="invalid_token"`;
    response.set('WWW-Authenticate', challenge);
    sendError(response, 401, {
      error: 'unauthorized',
      message:
        given === undefined ? `missing Authorization: Bearer <${what} token>` : `invalid ${what} token`,
    });
  };
}

// ── publish body ───────────────────────────────────────────────────────────

/** `application/json` or `application/<something>+json`, parameters such as charset aside. */
function isJsonContentType(request: IncomingMessage): boolean {
  const mediaType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || /^application\/[\w.-]+\+json$/.test(mediaType);
}

const requireJson: RequestHandler = (request, response, next) => {
  if (isJsonContentType(request)) return next();
  sendError(response, 415, {
    error: 'unsupported_media_type',
    message: `expected Content-Type: application/json, got ${request.get('content-type') ?? 'none'}`,
  });
};

/** Publishes the body's checked messages without checking them again when the hub allows it. */
function publishChecked(hub: RouterHub, messages: DataMessage[]): Promise<void> {
  const checkedPublish = (hub as Partial<Pick<ATPWebSocketServer, typeof publishCheckedKey>>)[
    publishCheckedKey
  ];
  return typeof checkedPublish === 'function' ? checkedPublish.call(hub, messages) : hub.publish(messages);
}

type PublishCheck = { ok: true; messages: DataMessage[] } | { ok: false; error: RouterErrorBody };

/** Checks every message of the body before any is published: a batch is all or nothing. */
function validatePublishBody(body: unknown): PublishCheck {
  const list = Array.isArray(body) ? body : [body];
  if (list.length === 0) {
    return {
      ok: false,
      error: {
        error: ErrorCode.InvalidMessage,
        message: 'the body is an empty array; send one data message or a non-empty array of them',
        issues: [{ index: null, path: '(root)', message: 'expected at least one data message' }],
      },
    };
  }
  const messages: DataMessage[] = [];
  const issues: PublishIssue[] = [];
  let invalid = 0;
  for (let index = 0; index < list.length; index++) {
    const value: unknown = list[index];
    const result = parseDataMessage(value);
    if (result.ok) {
      messages.push(result.message);
      continue;
    }
    invalid += 1;
    const found = result.error.issues ?? [];
    if (found.length === 0) issues.push({ index, path: pathOf(value), message: result.error.message });
    for (const issue of found) issues.push({ index, ...issue });
  }
  if (invalid === 0) return { ok: true, messages };
  const first = issues[0];
  const where = Array.isArray(body)
    ? `${invalid} of ${list.length} messages are invalid, nothing was published`
    : 'invalid data message, nothing was published';
  return {
    ok: false,
    error: {
      error: ErrorCode.InvalidMessage,
      message: first ? `${where}: [${first.index}] ${first.path}: ${first.message}` : where,
      issues,
    },
  };
}

/** Where a message without schema issues went wrong: its `type`, or the whole value. */
function pathOf(value: unknown): string {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? 'type' : '(root)';
}

/** Maps body-parser's errors (they carry a `type`) to the router's answers; others go to the app. */
function bodyParserErrors(error: unknown, _request: Request, response: Response, next: NextFunction): void {
  const answer = bodyParserAnswer(error);
  if (answer) sendError(response, answer.status, answer.body);
  else next(error);
}

function bodyParserAnswer(error: unknown): { status: number; body: RouterErrorBody } | undefined {
  const type = (error as { type?: unknown } | null)?.type;
  const message = error instanceof Error ? error.message : String(error);
  switch (type) {
    case 'entity.too.large': {
      const limit = (error as { limit?: number }).limit;
      const text = `the body is larger than the limit of ${limit ?? '?'} bytes`;
      return { status: 413, body: { error: 'payload_too_large', message: text } };
    }
    case 'entity.parse.failed':
      return {
        status: 400,
        body: { error: ErrorCode.InvalidJson, message: `the body is not valid JSON: ${message}` },
      };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, body: { error: 'unsupported_media_type', message } };
    case 'request.aborted':
    case 'request.size.invalid':
      return { status: 400, body: { error: 'bad_request', message } };
    default:
      return undefined;
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function sendError(response: Response, status: number, body: RouterErrorBody): void {
  response.status(status).set('Cache-Control', 'no-store').json(body);
}

// ── AsyncAPI document ──────────────────────────────────────────────────────

/** The document `@atp/ws-protocol` ships, read once (it only changes with the package). */
class AsyncApiDocument {
  #body: Promise<Buffer> | undefined;

  load(): Promise<Buffer> {
    this.#body ??= readFile(createRequire(import.meta.url).resolve('@atp/ws-protocol/asyncapi.json'));
    // A failed read is not cached: the next request tries again.
    this.#body.catch(() => {
      this.#body = undefined;
    });
    return this.#body;
  }
}

// ── browser script ─────────────────────────────────────────────────────────

interface LoadedScript {
  path: string;
  mtimeMs: number;
  size: number;
  body: Buffer;
  etag: string;
}

/** Serves the IIFE build from disk, re-read when the file changes (a rebuild during development). */
class ClientScript {
  #path: string | undefined;
  #loaded: LoadedScript | undefined;
  readonly #cacheControl: string;

  constructor(path: string | undefined, maxAgeSeconds: number) {
    this.#path = path;
    this.#cacheControl = `public, max-age=${maxAgeSeconds}`;
  }

  async serve(request: Request, response: Response): Promise<void> {
    let script: LoadedScript;
    try {
      script = await this.#load();
    } catch (error) {
      response
        .status(404)
        .type('text/plain')
        .send(`// the ATP browser client is not available: ${(error as Error).message}\n`);
      return;
    }
    response.set({
      'Content-Type': 'application/javascript; charset=utf-8',
      'Cache-Control': this.#cacheControl,
      ETag: script.etag,
      'Last-Modified': new Date(script.mtimeMs).toUTCString(),
      'X-Content-Type-Options': 'nosniff',
    });
    if (matchesIfNoneMatch(request.get('if-none-match'), script.etag)) {
      response.status(304).end();
      return;
    }
    response.status(200).send(script.body);
  }

  async #load(): Promise<LoadedScript> {
    this.#path ??= resolveClientScript();
    const path = this.#path;
    const info = await stat(path);
    const cached = this.#loaded;
    if (cached && cached.path === path && cached.mtimeMs === info.mtimeMs && cached.size === info.size) {
      return cached;
    }
    const body = await readFile(path);
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 27);
    this.#loaded = { path, mtimeMs: info.mtimeMs, size: info.size, body, etag: `"${hash}"` };
    return this.#loaded;
  }
}

/**
 * RFC 9110 13.1.2 with weak comparison. Unlike `req.fresh`, a request `Cache-Control: no-cache`
 * does not prevent a 304: that directive is for caches, the origin still answers the condition.
 */
function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => opaque(tag) === opaque(etag));
}

/**
 * The browser client's IIFE build, from `@atp/ws-client`: an optional peer
 * dependency, needed only to serve this script.
 */
function resolveClientScript(): string {
  const require = createRequire(import.meta.url);
  try {
    require.resolve('@atp/ws-client/package.json');
  } catch (cause) {
    throw new Error(
      '@atp/ws-client is not installed: it is an optional peer dependency of @atp/ws-server, needed to serve ' +
        'the browser script. Install it (npm install @atp/ws-client), or pass the clientScript option ' +
        '(a path to the script, or false to not serve it)',
      { cause },
    );
  }
  try {
    return require.resolve('@atp/ws-client/browser.global.js');
  } catch (cause) {
    throw new Error('@atp/ws-client/browser.global.js was not found (build @atp/ws-client first)', { cause });
  }
}
export {
  type ATPFallbackRouterOptions,
  createATPFallbackRouter,
  FALLBACK_SESSIONS_PATH,
  FALLBACK_STREAM_PATH,
  type FallbackHub,
} from './sse-router.js';
