import { isFatalCloseCode } from '@atp/ws-protocol';
import { reconnectDelay } from './backoff.js';
import { ATPWebSocketError, type ClientErrorCode } from './errors.js';
import type { ATPWebSocketEvents } from './events.js';
import { FULL } from './features.js';
import { Heartbeat } from './heartbeat.js';
import type { ResolvedOptions } from './options.js';
import { type ConnectionState, canTransition, createWaiter, type Waiter } from './state.js';
import { connectUrl, resolveUrl, watchEnvironment } from './url.js';

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
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

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
    if (FULL && code === undefined && socket.terminate) socket.terminate();
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
      FULL ? "no global WebSocket; on Node 20 pass { WebSocket } from 'ws'" : '',
    );
  }
  return ctor;
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

type Socket = WebSocketLike & SocketHandlers;

/** What an error tells of its cause: `ECONNREFUSED 127.0.0.1:9`, `Unexpected server response: 503`, … */
function errorDetail(error: unknown): string | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = [code, message].filter((part) => typeof part === 'string' && part).join(' ');
  return text || undefined;
}
type Timer = ReturnType<typeof setTimeout>;
type TransportEvent = 'state' | 'error' | 'disconnect' | 'reconnecting' | 'reconnect_failed';

/** How a {@link ReconnectingSocket} reports to its owner. */
export interface SocketOwner {
  /** Emits one of the connection events of {@link ATPWebSocketEvents}. */
  emit<E extends TransportEvent>(event: E, ...args: Parameters<ATPWebSocketEvents[E]>): void;
  /** A frame arrived. */
  frame(data: unknown): void;
  /** The heartbeat wants a `ping` sent. */
  ping(): void;
  /** The `client_id` to connect with. */
  clientId(): string | undefined;
}

/**
 * The transport under `ATPWebSocket`: opens the socket (token and URL per
 * attempt), detects refusals, dead peers and timeouts, retries with backoff,
 * and owns the connection `state`, which changes only in {@link ReconnectingSocket.setState}.
 * It knows nothing of subscriptions or sequences: the owner marks the
 * connection open when the server says `connected`.
 */
export class ReconnectingSocket {
  readonly #options: ResolvedOptions;
  readonly #owner: SocketOwner;
  readonly #heartbeat: Heartbeat;
  #state: ConnectionState = 'idle';
  #socket: Socket | undefined;
  #socketError: unknown;
  /** Failed attempts since the last connection that stayed open `minUptime`. */
  #attempts = 0;
  #openedAt = 0;
  /** Gave up after `maxReconnectAttempts`: coming back online tries again. */
  #revivable = false;
  /** Bumped by every attempt and by `close()`, so late callbacks of an older one do nothing. */
  #generation = 0;
  #retryTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #waiter: Waiter | undefined;
  #unwatch: (() => void) | undefined;

  constructor(options: ResolvedOptions, owner: SocketOwner) {
    this.#options = options;
    this.#owner = owner;
    this.#heartbeat = new Heartbeat(options.pingInterval, options.pongTimeout, owner.ping, () =>
      this.#drop('pong_timeout', FULL ? 'no pong within pongTimeout' : ''),
    );
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Starts connecting (or retries at once while waiting to); resolves when {@link ReconnectingSocket.opened} is called. */
  connect(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    this.#waiter ??= createWaiter();
    const { promise } = this.#waiter;
    if (this.#state === 'idle' || this.#state === 'closed') {
      this.#attempts = 0;
      // #region ESM/CJS only
      this.#revivable = false;
      this.#unwatch ??= watchEnvironment(() => this.#wake());
      // #endregion
      this.#open();
    } else if (this.#state === 'reconnecting') {
      this.#open();
    }
    return promise;
  }

  // #region ESM/CJS only
  /** Drops the connection (if any) and connects again at once. */
  reconnect(): Promise<void> {
    if (this.#state !== 'open' && this.#state !== 'connecting') return this.connect();
    this.#waiter ??= createWaiter();
    const { promise } = this.#waiter;
    const wasOpen = this.#state === 'open';
    this.#closeSocket(1000, 'client reconnect');
    if (wasOpen)
      this.#owner.emit('disconnect', { code: 1000, reason: 'client reconnect', willReconnect: true });
    this.setState('reconnecting');
    this.#open();
    return promise;
  }
  // #endregion

  // #region ESM/CJS only
  /** The network or the page came back: retry now, or make an open connection prove it is alive. */
  #wake(): void {
    if (this.#state === 'reconnecting') this.#open();
    else if (this.#state === 'open') this.#heartbeat.probe();
    else if (this.#state === 'closed' && this.#revivable) void this.connect();
  }
  // #endregion

  /** The server said `connected`: the connection is open. */
  opened(): void {
    clearTimeout(this.#connectTimer);
    this.#openedAt = Date.now();
    this.setState('open');
    this.#heartbeat.start();
    this.#waiter?.resolve();
    this.#waiter = undefined;
  }

  /** Any frame arrived: the peer is alive. */
  alive(): void {
    this.#heartbeat.alive();
  }

  /** Sends a frame when the socket is open; returns whether it was sent. */
  send(frame: string): boolean {
    const socket = this.#socket;
    if (socket?.readyState !== OPEN) return false;
    if (FULL) this.#trace('→', frame);
    try {
      socket.send(frame);
      return true;
    } catch (cause) {
      this.#fail('socket_error', FULL ? 'send failed' : '', cause);
      return false;
    }
  }

  /** Closes with 1000 and stops; a pending `connect()` rejects with `error`. */
  close(error: Error): void {
    this.#generation += 1;
    if (FULL) this.#revivable = false;
    const wasOpen = this.#state === 'open';
    this.#closeSocket(1000, 'client disconnect');
    if (wasOpen)
      this.#owner.emit('disconnect', { code: 1000, reason: 'client disconnect', willReconnect: false });
    this.#finish(error);
  }

  /** The only place the state changes (checked with `canTransition` in the ESM/CJS builds); emits `state { from, to }`. */
  setState(to: ConnectionState): void {
    const from = this.#state;
    if (from === to || (FULL && !canTransition(from, to))) return;
    this.#state = to;
    if (FULL) this.#trace('state', to);
    this.#owner.emit('state', { from, to });
  }

  #open(): void {
    clearTimeout(this.#retryTimer);
    const generation = ++this.#generation;
    this.setState('connecting');
    const { token, url, query } = this.#options;
    const call = <T>(input: T | (() => T | Promise<T>)) =>
      typeof input === 'function' ? (input as () => T | Promise<T>)() : input;
    if (!FULL || (typeof token !== 'function' && typeof url !== 'function' && typeof query !== 'function')) {
      this.#dial(
        generation,
        (token ?? undefined) as string | undefined,
        url as string | undefined,
        query as never,
      );
      return;
    }
    // Called before every connect, so an expiring token (or a moved endpoint) is picked up on reconnect.
    Promise.all([call(token), call(url), call(query)]).then(
      ([t, u, q]) => generation === this.#generation && this.#dial(generation, t ?? undefined, u, q),
      (cause) => {
        if (generation !== this.#generation) return;
        this.#fail('token_failed', 'the token, url or query function failed', cause);
        this.#retry();
      },
    );
  }

  #dial(
    generation: number,
    token: string | undefined,
    base: string | undefined,
    query: Record<string, string> | undefined,
  ): void {
    let socket: Socket;
    try {
      const url = connectUrl(resolveUrl(base), this.#owner.clientId(), token, query);
      const Ctor = resolveWebSocket(this.#options.WebSocket);
      const { protocols } = this.#options;
      socket = (protocols === undefined ? new Ctor(url) : new Ctor(url, protocols)) as Socket;
    } catch (cause) {
      const error =
        cause instanceof ATPWebSocketError
          ? cause
          : new ATPWebSocketError('invalid_url', String(cause), { cause });
      this.#owner.emit('error', { event: cause, error });
      this.#finish(error);
      return;
    }
    this.#socket = socket;
    this.#socketError = undefined;
    socket.onopen = noop;
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      if (FULL) this.#trace('←', event.data);
      this.#owner.frame(event.data);
    };
    // Reported once, when the socket closes, with the cause the platform gives (errno, HTTP status).
    socket.onerror = (event) => {
      if (socket === this.#socket) this.#socketError ??= event;
    };
    socket.onclose = (event) => socket === this.#socket && this.#onClose(event.code, event.reason);
    this.#connectTimer = setTimeout(
      () =>
        generation === this.#generation &&
        this.#drop('connect_timeout', FULL ? 'no connected within connectTimeout' : ''),
      this.#options.connectTimeout,
    );
  }

  #onClose(code: number, reason: string): void {
    const wasOpen = this.#state === 'open';
    this.#closeSocket();
    // Only a connection that stayed up long enough starts the retry count over: a server that
    // accepts and then closes at once (crash loop, 1013, 1008) gets a growing backoff.
    if (wasOpen && Date.now() - this.#openedAt >= this.#options.minUptime) this.#attempts = 0;
    // Browsers tell neither the HTTP status of a refused upgrade nor an error's cause: the IIFE
    // build (browsers only) does not look for them.
    const status = FULL ? refusedStatus(this.#socketError) : undefined;
    if (this.#socketError !== undefined) {
      const cause = this.#socketError as { error?: unknown; message?: unknown };
      const detail = (FULL && (errorDetail(cause.error) ?? errorDetail(cause))) || `close ${code}`;
      this.#fail(
        'socket_error',
        `${wasOpen ? 'connection lost' : 'connection failed'}: ${detail}`,
        cause.error ?? cause,
      );
    }
    const refused = status === 400 || status === 401 || status === 403 || isFatalCloseCode(code);
    const max = this.#options.maxReconnectAttempts;
    const willReconnect = !refused && this.#options.autoReconnect && (max == null || this.#attempts < max);
    if (wasOpen) this.#owner.emit('disconnect', { code, reason, willReconnect });
    if (!refused) {
      this.#retry();
      return;
    }
    const what = status ? `HTTP ${status}` : `close ${code} ${reason}`;
    const error = new ATPWebSocketError('refused', `connection refused: ${what}`, {
      status: status ?? code,
    });
    this.#owner.emit('error', { event: this.#socketError ?? { code, reason }, error });
    this.#finish(error);
  }

  #retry(): void {
    const attempts = this.#attempts;
    const max = this.#options.maxReconnectAttempts;
    if (!this.#options.autoReconnect) {
      this.#finish(new ATPWebSocketError('connect_failed', FULL ? 'connection closed' : ''));
      return;
    }
    if (max != null && attempts >= max) {
      const error = new ATPWebSocketError('reconnect_failed', `gave up after ${attempts} attempts`);
      this.#finish(error, () => this.#owner.emit('reconnect_failed', { attempts }), true);
      return;
    }
    const attempt = ++this.#attempts;
    const custom = FULL ? this.#options.retryDelay?.(attempt) : undefined;
    const delay = custom ?? reconnectDelay(attempt, this.#options);
    this.setState('reconnecting');
    this.#owner.emit('reconnecting', { attempt, delay });
    const generation = this.#generation;
    this.#retryTimer = setTimeout(() => generation === this.#generation && this.#open(), delay);
  }

  /** Ends the attempts: `closed`, and the pending `connect()` rejected; `revivable` keeps watching the network. */
  #finish(error: Error, announce?: () => void, revivable = false): void {
    this.#closeSocket();
    if (FULL) this.#revivable = revivable;
    if (FULL && !revivable) {
      this.#unwatch?.();
      this.#unwatch = undefined;
    }
    this.setState('closed');
    announce?.();
    this.#waiter?.reject(error);
    this.#waiter = undefined;
  }

  /** Gives up on a socket that stopped answering, without waiting for a closing handshake. */
  #drop(code: ClientErrorCode, message: string): void {
    this.#fail(code, message);
    this.#onClose(1006, message || code);
  }

  #closeSocket(code?: number, reason?: string): void {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    this.#heartbeat.stop();
    if (this.#socket) closeSocket(this.#socket, code, reason);
    this.#socket = undefined;
  }

  #trace(...args: unknown[]): void {
    if (FULL && this.#options.debug) this.#options.logger?.debug?.('ATPWebSocket', ...args);
  }

  #fail(code: ClientErrorCode, message: string, event?: unknown): void {
    this.#owner.emit('error', { event, error: new ATPWebSocketError(code, message, { cause: event }) });
  }
}
