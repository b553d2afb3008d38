import { WS_PATH } from '@atp/ws-protocol';
import { ATPWebSocketError } from './errors.js';

/**
 * The part of a WebSocket the client uses; the browser's `WebSocket`, Node 22's
 * global one and `WebSocket` from the `ws` package all fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from `ws` on Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The handler properties every WebSocket implementation has; not part of the public type so both fit. */
export interface SocketHandlers {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  /** `ws` only: drops the TCP connection at once. */
  terminate?: () => void;
}

/** `readyState` of an open socket. */
export const OPEN = 1;

const noop = (): void => {};

/** Stops listening to a socket and closes it: with `code`, or at once (`ws`'s `terminate`) without. */
export function closeSocket(socket: WebSocketLike & SocketHandlers, code?: number, reason?: string): void {
  // No-op handlers rather than null: `ws` throws on an 'error' event nobody listens to.
  socket.onopen = socket.onmessage = socket.onerror = socket.onclose = noop;
  try {
    if (code === undefined && socket.terminate) socket.terminate();
    else socket.close(code ?? 1000, reason);
  } catch {
    // Already closing.
  }
}

/** The constructor to use: the option, else the global one, else a clear error. */
export function resolveWebSocket(option: WebSocketConstructor | undefined): WebSocketConstructor {
  const ctor = option ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof ctor !== 'function') {
    throw new ATPWebSocketError(
      'no_websocket',
      "ATPWebSocket: no global WebSocket; on Node 20 pass { WebSocket } from 'ws'",
    );
  }
  return ctor;
}

/**
 * The endpoint URL: the option as given (a path is resolved against `location`),
 * else `ws(s)://<location.host>/api/ws/updates`.
 *
 * @example
 * resolveUrl(undefined, { protocol: 'https:', host: 'atp.example.com', href: 'https://atp.example.com/' });
 * // 'wss://atp.example.com/api/ws/updates'
 */
export function resolveUrl(
  url: string | undefined,
  location: { protocol: string; host: string; href: string } | undefined = (
    globalThis as { location?: { protocol: string; host: string; href: string } }
  ).location,
): string {
  if (url !== undefined && /^wss?:\/\//i.test(url)) return url;
  if (!location) {
    throw new ATPWebSocketError('invalid_url', 'ATPWebSocket: no url option and no location');
  }
  const resolved = new URL(url ?? WS_PATH, location.href);
  resolved.protocol = resolved.protocol === 'https:' || resolved.protocol === 'wss:' ? 'wss:' : 'ws:';
  return resolved.href;
}

/** The URL of one connect: `client_id` and `token` set as query parameters. */
export function connectUrl(base: string, clientId: string | undefined, token: string | undefined): string {
  const url = new URL(base);
  if (clientId !== undefined) url.searchParams.set('client_id', clientId);
  if (token) url.searchParams.set('token', token);
  return url.href;
}

/**
 * The HTTP status of a refused upgrade, when the implementation reports it
 * (`ws` errors read "Unexpected server response: 401"; browsers do not tell it).
 */
export function refusedStatus(event: unknown): number | undefined {
  const candidate = event as { message?: unknown; error?: { message?: unknown } } | null;
  const text = String(candidate?.message ?? candidate?.error?.message ?? '');
  const match = /Unexpected server response: (\d{3})/.exec(text);
  return match ? Number(match[1]) : undefined;
}

type Listenable = {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
};

/**
 * Calls `wake` when the browser comes back online or the page becomes visible;
 * returns a function that stops watching. Does nothing outside browsers.
 */
export function watchEnvironment(wake: () => void): () => void {
  const target = globalThis as Partial<Listenable>;
  const doc = (globalThis as { document?: Listenable & { visibilityState?: string } }).document;
  if (typeof target.addEventListener !== 'function') return () => {};
  const listener = (): void => {
    if (doc?.visibilityState !== 'hidden') wake();
  };
  target.addEventListener('online', listener);
  doc?.addEventListener('visibilitychange', listener);
  return () => {
    target.removeEventListener?.('online', listener);
    doc?.removeEventListener('visibilitychange', listener);
  };
}
