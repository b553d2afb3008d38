import type { ErrorCode } from '@atp/ws-protocol';

/** What went wrong, as the `code` of an {@link ATPWebSocketError}. */
export type ClientErrorCode =
  /** No `WebSocket` option and no global `WebSocket` (Node 20: pass `WebSocket` from `ws`). */
  | 'no_websocket'
  /** No `url` option and no `location` to derive it from, or an invalid URL. */
  | 'invalid_url'
  /** The `token` function threw or rejected. */
  | 'token_failed'
  /** The server refused the upgrade (HTTP 400/401/403) or closed with a fatal code (4000, 4001, 4003). */
  | 'refused'
  /** A socket error; the client retries when `autoReconnect` allows. */
  | 'socket_error'
  /** No `connected` arrived within `connectTimeout`. */
  | 'connect_timeout'
  /** No `pong` (nor any other frame) arrived within `pongTimeout` after a `ping`. */
  | 'pong_timeout'
  /** The connection closed before `connected` and `autoReconnect` is off. */
  | 'connect_failed'
  /** `maxReconnectAttempts` attempts failed. */
  | 'reconnect_failed'
  /** `disconnect()` was called before the connection was established. */
  | 'disconnected'
  /** The server answered a message with `error { code, message }`; see `serverCode`. */
  | 'server_error'
  /** The outgoing queue was full; the oldest queued message was dropped. */
  | 'queue_overflow'
  /** A frame from the server was not a JSON message. */
  | 'invalid_frame'
  /** An event listener threw; the other listeners still ran (`cause` is what it threw). */
  | 'listener_failed'
  /** A resource's snapshot could not be used: it had no `data`, or `fromSnapshot` threw (`cause`). */
  | 'snapshot_failed'
  /** A resource's `reduce` or `matches` threw on a message (`cause`); the resource is fetched again. */
  | 'reducer_failed'
  /** The subscription was released (or its signal aborted) before the server confirmed it; a resource's fetch was abandoned. */
  | 'aborted'
  /** A resource's snapshot did not arrive within `fetchTimeout`: the fetch was abandoned (its signal aborted) and is retried. */
  | 'fetch_timeout'
  /**
   * The server closed the connection with 1009 (a message over its size limit): the largest
   * subscription being sent is refused and left out of later resumes, so the client does not loop.
   */
  | 'message_too_large';

/**
 * The one error class of the client: a string `code` to switch on, a message
 * a person can act on (prefixed `ATPWebSocket: `), and the underlying `cause` when there is one.
 * The IIFE build leaves out the fixed texts: its message is then the code (`ATPWebSocket: pong_timeout`).
 */
export class ATPWebSocketError extends Error {
  override readonly name = 'ATPWebSocketError';
  readonly code: ClientErrorCode;
  /** For `server_error`: the protocol's error code (`unknown_topic`, `forbidden`, …). */
  readonly serverCode: ErrorCode | undefined;
  /** For `refused`: the HTTP status or close code that refused the connection. */
  readonly status: number | undefined;

  constructor(
    code: ClientErrorCode,
    message: string,
    options: { cause?: unknown; serverCode?: ErrorCode; status?: number } = {},
  ) {
    super(
      `ATPWebSocket: ${message || code}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.serverCode = options.serverCode;
    this.status = options.status;
  }
}

/** The error thrown when the IIFE build is asked for what only the ESM/CJS builds have. */
export function esmOnly(what: string): TypeError {
  return new TypeError(`ATPWebSocket: ${what}: ESM/CJS only`);
}
