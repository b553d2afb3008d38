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
  /**
   * History a connection's replays (`from`, `resume`) may read per second, in
   * messages: replays are paced to it, in pages of 1,000. The burst is as large.
   * @default 200000
   */
  replayMessagesPerSecond?: number;
}

/**
 * Which peers are proxies whose `X-Forwarded-*` headers the hub believes, with the meaning of
 * Express's `trust proxy` setting:
 *
 * - `false`: none (the peer is the client); `true`: every hop (the left-most `X-Forwarded-For`
 *   entry is the client; only when every path to the hub goes through a proxy that sets it).
 * - a number `n`: the first `n` hops from the hub (1 = the peer is the proxy).
 * - addresses and CIDR ranges, as an array or a comma-separated string (`'10.0.0.0/8, ::1'`), plus the
 *   names `'loopback'`, `'linklocal'` and `'uniquelocal'`: hops whose address is among them.
 * - a predicate `(address, hopIndex) => boolean`, hop 0 being the peer; a throw counts as not trusted.
 */
export type TrustProxy =
  | boolean
  | number
  | string
  | readonly string[]
  | ((address: string, hopIndex: number) => boolean);

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
  /**
   * Most bytes the subscriptions of one connection may take, counted as the
   * length of their topics and filters (JSON): what bounds the memory of the
   * subscription index per connection. One more is refused with
   * `too_many_subscriptions`. @default 16384
   */
  maxSubscriptionBytes?: number;
  /**
   * Most requests (`subscribe`, `unsubscribe`, `resume`) of one connection
   * waiting for their answer, e.g. behind a replay; more are answered with
   * `error rate_limited` at once. Above the rate limit's burst, so that a
   * client within the rate is never refused for it. @default 256
   */
  maxQueuedRequests?: number;
  /** Most connections in total; more are refused with HTTP 503. @default 10000 */
  maxConnections?: number;
  /**
   * Most connections from one IP address; more are refused with HTTP 429. Behind a proxy, set
   * {@link trustProxy} so that the address is the client's, not the proxy's. @default 1000
   */
  maxConnectionsPerIp?: number;
  /** Outbound bytes buffered for one connection above which superseded progress is coalesced. @default 1048576 */
  softBufferedBytes?: number;
  /**
   * Outbound bytes buffered for one connection above which it is closed with 1013. `resource` answers
   * do not count toward it: they have a budget of this size of their own, and one that does not fit
   * (with the answers not yet sent) is answered `resource_unavailable`. @default 4194304
   */
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
  /**
   * Allowed `Origin` headers (exact match), or a predicate; other origins are refused with HTTP 403.
   * An upgrade without `Origin` is decided by {@link allowMissingOrigin}. Absent: every origin.
   */
  allowedOrigins?: readonly string[] | ((origin: string | undefined) => boolean);
  /**
   * Whether an upgrade without an `Origin` header passes {@link allowedOrigins}. Browsers always
   * send `Origin` on a WebSocket upgrade, so a request without one comes from a non-browser client
   * (Node, a server, a CLI), which could send any `Origin` it likes: the origin check cannot protect
   * against it, and it is not the cross-site browser request the check is there for. `false` refuses
   * such clients with HTTP 403. Only meaningful with `allowedOrigins`; with a predicate and this option
   * unset, the predicate is asked with `undefined`. Use `authenticate` to keep unknown clients out.
   * @default true
   */
  allowMissingOrigin?: boolean;
  /**
   * Which peers are trusted proxies (see {@link TrustProxy}). The hub then takes the client's address
   * (for `maxConnectionsPerIp` and `ip` in the client list) from `X-Forwarded-For` through trusted
   * hops only, and `GET /api/ws/info` honours `X-Forwarded-Proto` and `X-Forwarded-Host` only from a
   * trusted peer. This governs the hub alone, not an Express app's `trust proxy` setting (nor the
   * other way round): set both to the same value. @default false (no proxy: the peer is the client)
   */
  trustProxy?: TrustProxy;
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
  /** The client's address: the peer's, or the one forwarded through proxies trusted by `trustProxy`. */
  ip?: string;
  /** Which server process holds it (with a shared broker). */
  server_id?: string;
  /** Outbound bytes written but not yet flushed to the network, plus those waiting in its queue. */
  buffered_bytes?: number;
  /** The `sequence` of the last data message sent (or skipped by a gap). */
  last_sequence?: number;
  /** The stream position its deliveries have reached. */
  position?: { epoch: string; offset: number };
  /** Messages it is behind the stream's head: still to be replayed or waiting in its queue. */
  lag_messages?: number;
  /** Age of the oldest message it is still to receive, seconds (0 when it is up to date). */
  lag_seconds?: number;
  /** Data messages sent to it. */
  sent?: number;
  /** Superseded progress messages coalesced away for it. */
  coalesced?: number;
  /** Whether a replay of history is in progress for it. */
  replaying?: boolean;
  /** Earlier connections under the same `client_id` seen by this process. */
  reconnects?: number;
  /** How it is connected: a WebSocket, or the Server-Sent Events fallback (`sse`). */
  transport?: 'websocket' | 'sse';
}
