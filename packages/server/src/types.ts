import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Filter } from '@atp/ws-protocol';
import type { Broker } from './broker.js';

/** Who is connected, as returned by {@link ATPWebSocketServerOptions.authenticate}. */
export interface Principal {
  /** Stable identity; a session can only be resumed by the same `id`. */
  readonly id: string;
  readonly [key: string]: unknown;
}

/** A pino-compatible logger (pino, bunyan-like and `console`-like objects fit). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Token-bucket limit on inbound messages of one connection. */
export interface RateLimitOptions {
  /** Sustained messages per second. @default 50 */
  messagesPerSecond?: number;
  /** Messages allowed at once above the sustained rate. @default 100 */
  burst?: number;
  /**
   * Refused messages (`rate_limited`) within about a minute after which the
   * connection is closed with 1008 (the allowance refills at this many per
   * minute, so refusals long past do not count). @default 200
   */
  closeAfterRefused?: number;
}

/** Options of {@link createATPWebSocketServer}. Every limit has a safe default. */
export interface ATPWebSocketServerOptions {
  /** An existing HTTP(S) server (or Express's `app.listen()` result) to attach the upgrade handler to. */
  server?: HttpServer | HttpsServer;
  /** Listen on this port on its own when no `server` is given (0 = any free port). */
  port?: number;
  /** Host to listen on with `port`. @default '127.0.0.1' */
  host?: string;
  /** Path of the WebSocket endpoint. @default '/api/ws/updates' */
  path?: string;
  /** Where messages and their history go. @default new MemoryBroker() */
  broker?: Broker;
  /** Server ping frame interval in ms. @default 30000 */
  pingInterval?: number;
  /** Terminate a connection that has not answered a ping within this many ms. @default 10000 */
  pingTimeout?: number;
  /** Largest inbound frame in bytes; bigger frames close the connection with 1009. @default 65536 */
  maxPayload?: number;
  /** Inbound message rate limit per connection. */
  rateLimit?: RateLimitOptions;
  /** Most subscriptions one connection may hold. @default 100 */
  maxSubscriptions?: number;
  /** Most connections in total; more are refused with HTTP 503. @default 10000 */
  maxConnections?: number;
  /** Most connections from one IP address; more are refused with HTTP 429. @default 1000 */
  maxConnectionsPerIp?: number;
  /** Outbound bytes buffered for one connection above which superseded progress is coalesced. @default 1048576 */
  softBufferedBytes?: number;
  /** Outbound bytes buffered for one connection above which it is closed with 1013. @default 4194304 */
  maxBufferedBytes?: number;
  /** How long a disconnected client's session (principal) is remembered for resume, ms. @default 600000 */
  sessionTtlMs?: number;
  /**
   * Called on every upgrade request before it is accepted. Return a principal to
   * accept, `null` to refuse with HTTP 401. A thrown error refuses with 500.
   */
  authenticate?: (
    request: IncomingMessage,
    token: string | undefined,
  ) => Principal | null | Promise<Principal | null>;
  /** Called on every subscribe; `false` answers `error forbidden`. */
  authorizeSubscription?: (
    principal: Principal | null,
    topic: string,
    filter: Filter,
  ) => boolean | Promise<boolean>;
  /** Allowed `Origin` headers (exact match), or a predicate. Absent: every origin. */
  allowedOrigins?: readonly string[] | ((origin: string | undefined) => boolean);
  /** The URL clients outside should use (for `GET /api/ws/info`), when it cannot be derived from the request. */
  publicUrl?: string;
  /** How often this process shares its client list through a broker that supports it, ms. @default 5000 */
  presenceIntervalMs?: number;
  /** Where the hub logs. @default silent */
  logger?: Logger;
}

/** One connected client, as listed by `GET /api/ws/clients`. */
export interface ClientInfo {
  client_id: string;
  /** ISO timestamp. */
  connected_at: string;
  /** Topics subscribed to (one entry per distinct topic). */
  subscriptions: string[];
  /** ISO timestamp of the last message received from or sent to the client. */
  last_activity: string;
  /** Remote address. */
  ip?: string;
  /** Which server process holds it (with a shared broker). */
  server_id?: string;
}
