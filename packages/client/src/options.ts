import type { WebSocketConstructor } from './websocket.js';

/** Where the client reports what nobody listens to, and its `debug` trace. */
export interface Logger {
  error(...args: unknown[]): void;
  debug?(...args: unknown[]): void;
}

/** A value, or a function (sync or async) called before every connect. */
export type PerConnect<T> = T | (() => T | Promise<T>);

/** Options of {@link ATPWebSocket}; every one is optional. */
export interface ATPWebSocketOptions {
  /**
   * Endpoint URL (a path is resolved against `location`); a function is called before every connect.
   * @default `ws(s)://${location.host}/api/ws/updates`
   */
  url?: PerConnect<string | undefined>;
  /** More query parameters of the connect URL; a function is called before every connect. */
  query?: PerConnect<Record<string, string> | undefined>;
  /** WebSocket subprotocols, passed to the WebSocket constructor. */
  protocols?: string | string[];
  /** Reconnect after an unexpected close. @default true */
  autoReconnect?: boolean;
  /** Delay before the first reconnect attempt, ms. @default 1000 */
  reconnectInterval?: number;
  /** Largest reconnect delay, ms. @default 30000 */
  maxReconnectInterval?: number;
  /** Factor by which the delay grows after each failed attempt. @default 1.5 */
  reconnectDecay?: number;
  /** Failed attempts in a row before giving up with `reconnect_failed`; `null` = never give up. @default null */
  maxReconnectAttempts?: number | null;
  /** Interval of the application `ping`, ms; 0 turns the client heartbeat off. @default 25000 */
  pingInterval?: number;
  /** A connection that receives nothing (no `pong`, no data) this long after a `ping` is dead, ms. @default 10000 */
  pongTimeout?: number;
  /** Time allowed from opening the socket to the server's `connected`, ms. @default 10000 */
  connectTimeout?: number;
  /** Randomisation of the reconnect delay: `r` in [0, 1] for ±r, `'full'` for 0…delay, 0 for none. @default 0.2 */
  jitter?: number | 'full';
  /** Replaces the computed reconnect delay (ms) of attempt `attempt` (1, 2, …): for tests and custom policies. */
  retryDelay?: (attempt: number) => number;
  /** Session id sent as `client_id` (`^[A-Za-z0-9_-]{1,64}$`). @default the one the server assigns, kept for reconnects */
  clientId?: string;
  /** Sent as the `token` query parameter; a function is called on every connect, so expiring tokens refresh. */
  token?: string | (() => string | null | undefined | Promise<string | null | undefined>);
  /** WebSocket constructor; Node 20 has no global one: pass `WebSocket` from `ws`. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** Messages given to `send()` while not open are queued up to this many (the oldest dropped). @default 100 */
  maxQueuedMessages?: number;
  /**
   * A connection must stay open this long (ms) for the retry count and the backoff to start over;
   * a server that accepts and then closes at once is retried with a growing delay. @default 5000
   */
  minUptime?: number;
  /** Where errors nobody listens to (and listener failures) are written; `null` for nowhere. @default console */
  logger?: Logger | null;
  /** Traces every frame in and out, and every state change, through `logger.debug`. @default false */
  debug?: boolean;
}

/** The options with their defaults filled in. */
export type ResolvedOptions = Required<
  Omit<
    ATPWebSocketOptions,
    | 'url'
    | 'query'
    | 'protocols'
    | 'retryDelay'
    | 'clientId'
    | 'token'
    | 'WebSocket'
    | 'maxReconnectAttempts'
    | 'logger'
  >
> &
  ATPWebSocketOptions;

/** Fills in the documented defaults (package README, docs/GUIDE.md); `undefined` values count as absent. */
export function resolveOptions(options: ATPWebSocketOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    autoReconnect: true,
    reconnectInterval: 1000,
    maxReconnectInterval: 30000,
    reconnectDecay: 1.5,
    pingInterval: 25000,
    pongTimeout: 10000,
    connectTimeout: 10000,
    jitter: 0.2,
    maxQueuedMessages: 100,
    minUptime: 5000,
    debug: false,
    logger: globalThis.console,
  };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  return resolved;
}
