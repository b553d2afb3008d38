import { CloseCode, type ErrorCode, type Filter, GapReason, isFatalCloseCode } from '@atp/ws-protocol';
import type {
  ClientMessage,
  ErrorMessage,
  ResumedMessage,
  StreamPosition,
  SubscribedMessage,
} from '@atp/ws-protocol';
import { EventEmitter } from 'eventemitter3';
import { reconnectDelay } from './backoff.js';
import { ATPWebSocketError, type ClientErrorCode } from './errors.js';
import type { ATPWebSocketEvents, MessageMeta, SubscribeOptions, TopicName } from './events.js';
import { type ATPWebSocketOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Heartbeat } from './heartbeat.js';
import { SessionTracker } from './resume.js';
import { type ConnectionState, canTransition, createWaiter, type Waiter } from './state.js';
import { type SubscriptionEntry, SubscriptionRegistry } from './subscriptions.js';
import {
  closeSocket,
  connectUrl,
  OPEN,
  refusedStatus,
  resolveUrl,
  resolveWebSocket,
  type SocketHandlers,
  type WebSocketLike,
  watchEnvironment,
} from './websocket.js';

type Socket = WebSocketLike & SocketHandlers;
type Timer = ReturnType<typeof setTimeout>;
type DataFrame = { type: string; payload: unknown; sequence: number; epoch: string; offset: number };

/** Client events that a server message `type` must never trigger. */
const RESERVED = new Set([
  'connect',
  'disconnect',
  'error',
  'reconnecting',
  'reconnect_failed',
  'sequence_gap',
  'state',
  'message',
]);
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const noop = (): void => {};

/**
 * The ATP real-time updates client: connects, subscribes, reconnects with
 * backoff and resumes the session so that every missed message arrives in
 * order and exactly once, or a `sequence_gap` says what to refetch.
 *
 * @example
 * const ws = new ATPWebSocket();
 * ws.on('test_progress', (data, meta) => console.log(data.progress_percent, meta.sequence));
 * ws.subscribe('test:progress', { suite_execution_id: 123 });
 * await ws.connect();
 */
export class ATPWebSocket {
  /** WebSocket close codes of the protocol. */
  static readonly CloseCode = CloseCode;
  /** Reasons of `sequence_gap`. */
  static readonly GapReason = GapReason;

  readonly #options: ResolvedOptions;
  readonly #emitter = new EventEmitter<ATPWebSocketEvents>();
  readonly #subscriptions = new SubscriptionRegistry();
  readonly #session = new SessionTracker();
  #state: ConnectionState = 'idle';
  #clientId: string | undefined;
  #socket: Socket | undefined;
  #socketError: unknown;
  /** Position of the current connection's `connected`. */
  #connectedAt: StreamPosition | undefined;
  /** Failed attempts since the last `connected`. */
  #attempts = 0;
  /** Bumped by every attempt and by `disconnect()`, so late callbacks of an older one do nothing. */
  #generation = 0;
  #retryTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  readonly #heartbeat: Heartbeat;
  #queue: string[] = [];
  #requestId = 0;
  #resumeId: number | undefined;
  #waiter: Waiter | undefined;
  #unwatch: (() => void) | undefined;
  /** Set by `disconnect()`: the next `connect()` starts a fresh session. */
  #fresh = false;

  /** Creates a client; nothing connects until {@link ATPWebSocket.connect}. */
  constructor(options: ATPWebSocketOptions = {}) {
    if (options.clientId !== undefined && !CLIENT_ID.test(options.clientId)) {
      throw new TypeError(`ATPWebSocket: clientId must match ${CLIENT_ID}`);
    }
    this.#options = resolveOptions(options);
    this.#clientId = options.clientId;
    this.#heartbeat = new Heartbeat(
      this.#options.pingInterval,
      this.#options.pongTimeout,
      () => this.#sendNow({ type: 'ping', id: this.#nextId() }),
      () => this.#drop('pong_timeout', 'no pong within pongTimeout'),
    );
  }

  /** The connection state; the `state` event reports each change. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The session's `client_id`: the option, else the one the server assigned at the first `connected`. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** Whether the connection is `open`. */
  get isConnected(): boolean {
    return this.#state === 'open';
  }

  /** The last data `sequence` delivered (0 before any). */
  get lastSequence(): number {
    return this.#session.lastSequence;
  }

  /** The wanted subscriptions and how many references hold each. */
  get subscriptions(): ReadonlyArray<{ topic: string; filter: Filter; refs: number }> {
    return this.#subscriptions.list().map(({ topic, filter, refs }) => ({ topic, filter, refs }));
  }

  /**
   * Connects (and keeps trying, per `autoReconnect`): resolves on the server's
   * `connected`; rejects on a refusal (HTTP 400/401/403, close 4000/4001/4003),
   * on `disconnect()`, and when retries are exhausted. The promise never causes
   * an unhandled rejection by itself: failures are emitted as `error` too.
   * After `disconnect()`, `connect()` starts a fresh session (sequence from 1).
   */
  connect(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    this.#waiter ??= createWaiter();
    const waiter = this.#waiter;
    if (this.#state === 'idle' || this.#state === 'closed') {
      if (this.#fresh) {
        this.#fresh = false;
        this.#session.reset();
        this.#subscriptions.resetSent();
      }
      this.#attempts = 0;
      this.#unwatch ??= watchEnvironment(() => this.#state === 'reconnecting' && this.#open());
      this.#open();
    } else if (this.#state === 'reconnecting') {
      this.#open();
    }
    return waiter.promise;
  }

  /** Closes the connection (code 1000) and stops reconnecting. Subscriptions are kept for a later `connect()`. */
  disconnect(): void {
    this.#generation += 1;
    this.#fresh = true;
    const wasOpen = this.#state === 'open';
    this.#closeSocket(CloseCode.Normal, 'client disconnect');
    this.#queue = [];
    if (wasOpen)
      this.#emit('disconnect', { code: CloseCode.Normal, reason: 'client disconnect', willReconnect: false });
    this.#finish(new ATPWebSocketError('disconnected', 'ATPWebSocket: disconnect() called before connected'));
  }

  /**
   * Subscribes to a topic, optionally filtered. Identical subscriptions (same
   * topic, equal filter) share one wire subscription. Returns a function that
   * releases just this reference; the wire `unsubscribe` goes with the last one.
   *
   * @example
   * const release = ws.subscribe('logs', { suite_execution_id: 123, level: ['error', 'critical'] });
   * release();
   */
  subscribe(topic: TopicName, filter?: Filter, options: SubscribeOptions = {}): () => void {
    const { entry, created, release } = this.#subscriptions.add(topic, filter, options.from);
    if (created && this.#state === 'open') this.#sendSubscribe(entry);
    return () => {
      const last = release();
      if (last) this.#sendUnsubscribe([last], { topic: last.topic, filter: last.filter });
    };
  }

  /** Removes every subscription to `topic`, or the one with exactly this `filter`, whatever its reference count. */
  unsubscribe(topic: TopicName, filter?: Filter): void {
    const removed = this.#subscriptions.remove(topic, filter);
    this.#sendUnsubscribe(
      removed,
      filter === undefined ? { topic } : { topic, filter: removed[0]?.filter ?? filter },
    );
  }

  /** Registers a handler; returns a function that removes it. */
  on<E extends keyof ATPWebSocketEvents>(event: E, handler: ATPWebSocketEvents[E]): () => void {
    this.#emitter.on(event, handler as never);
    return () => this.off(event, handler);
  }

  /** Registers a handler for the next occurrence only; returns a function that removes it. */
  once<E extends keyof ATPWebSocketEvents>(event: E, handler: ATPWebSocketEvents[E]): () => void {
    this.#emitter.once(event, handler as never);
    return () => this.off(event, handler);
  }

  /** Removes a handler (every handler of the event when none is given). */
  off<E extends keyof ATPWebSocketEvents>(event: E, handler?: ATPWebSocketEvents[E]): void {
    this.#emitter.off(event, handler as never);
  }

  /**
   * Sends a raw client message now when open, else queues it until `connected`
   * (at most `maxQueuedMessages`; the oldest is dropped with an `error` event).
   * Prefer {@link ATPWebSocket.subscribe}: subscriptions sent this way are not restored.
   */
  send(message: ClientMessage): void {
    const frame = JSON.stringify(message);
    if (this.#state === 'open') {
      this.#write(frame);
      return;
    }
    if (this.#queue.push(frame) > this.#options.maxQueuedMessages) {
      this.#queue.shift();
      this.#fail('queue_overflow', 'ATPWebSocket: send queue full, dropped the oldest message');
    }
  }

  // ── connection lifecycle ───────────────────────────────────────────────────

  /** The only place the state changes. */
  #setState(to: ConnectionState): void {
    const from = this.#state;
    if (from === to || !canTransition(from, to)) return;
    this.#state = to;
    this.#emit('state', { from, to });
  }

  #open(): void {
    clearTimeout(this.#retryTimer);
    const generation = ++this.#generation;
    this.#setState('connecting');
    const token = this.#options.token;
    if (typeof token !== 'function') {
      this.#dial(generation, token);
      return;
    }
    new Promise<string | null | undefined>((resolve) => resolve(token())).then(
      (value) => generation === this.#generation && this.#dial(generation, value ?? undefined),
      (cause) => {
        if (generation !== this.#generation) return;
        this.#fail('token_failed', 'ATPWebSocket: the token function failed', cause);
        this.#retry();
      },
    );
  }

  #dial(generation: number, token: string | undefined): void {
    let socket: Socket;
    try {
      const url = connectUrl(resolveUrl(this.#options.url), this.#clientId, token);
      socket = new (resolveWebSocket(this.#options.WebSocket))(url) as Socket;
    } catch (cause) {
      const error =
        cause instanceof ATPWebSocketError
          ? cause
          : new ATPWebSocketError('invalid_url', String(cause), { cause });
      this.#emit('error', { event: cause, error });
      this.#finish(error);
      return;
    }
    this.#socket = socket;
    this.#socketError = undefined;
    this.#session.beginConnection();
    socket.onopen = noop;
    socket.onmessage = (event) => socket === this.#socket && this.#onFrame(event.data);
    socket.onerror = (event) => {
      if (socket !== this.#socket) return;
      this.#socketError = event;
      this.#fail('socket_error', 'ATPWebSocket: socket error', event);
    };
    socket.onclose = (event) => socket === this.#socket && this.#onClose(event.code, event.reason);
    this.#connectTimer = setTimeout(
      () =>
        generation === this.#generation &&
        this.#drop('connect_timeout', 'no connected within connectTimeout'),
      this.#options.connectTimeout,
    );
  }

  #onClose(code: number, reason: string): void {
    const wasOpen = this.#state === 'open';
    this.#closeSocket();
    const status = refusedStatus(this.#socketError);
    const refused = status === 400 || status === 401 || status === 403 || isFatalCloseCode(code);
    const max = this.#options.maxReconnectAttempts;
    const willReconnect = !refused && this.#options.autoReconnect && (max == null || this.#attempts < max);
    if (wasOpen) this.#emit('disconnect', { code, reason, willReconnect });
    if (!refused) {
      this.#retry();
      return;
    }
    const error = new ATPWebSocketError(
      'refused',
      `ATPWebSocket: connection refused: ${status ? `HTTP ${status}` : `close ${code} ${reason}`}`,
      { status: status ?? code },
    );
    this.#emit('error', { event: this.#socketError ?? { code, reason }, error });
    this.#finish(error);
  }

  #retry(): void {
    const attempts = this.#attempts;
    const max = this.#options.maxReconnectAttempts;
    if (!this.#options.autoReconnect) {
      this.#finish(new ATPWebSocketError('connect_failed', 'ATPWebSocket: connection closed'));
      return;
    }
    if (max != null && attempts >= max) {
      const error = new ATPWebSocketError(
        'reconnect_failed',
        `ATPWebSocket: gave up after ${attempts} attempts`,
      );
      this.#finish(error, () => this.#emit('reconnect_failed', { attempts }));
      return;
    }
    const attempt = ++this.#attempts;
    const delay = this.#options.retryDelay?.(attempt) ?? reconnectDelay(attempt, this.#options);
    this.#setState('reconnecting');
    this.#emit('reconnecting', { attempt, delay });
    const generation = this.#generation;
    this.#retryTimer = setTimeout(() => generation === this.#generation && this.#open(), delay);
  }

  /** Ends the session's attempts: `closed`, and the pending `connect()` rejected. */
  #finish(error: Error, announce?: () => void): void {
    this.#closeSocket();
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#setState('closed');
    announce?.();
    this.#waiter?.reject(error);
    this.#waiter = undefined;
  }

  /** Gives up on a socket that stopped answering, without waiting for a closing handshake. */
  #drop(code: ClientErrorCode, message: string): void {
    this.#fail(code, `ATPWebSocket: ${message}`);
    this.#onClose(1006, message);
  }

  #closeSocket(code?: number, reason?: string): void {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    this.#heartbeat.stop();
    if (this.#socket) closeSocket(this.#socket, code, reason);
    this.#socket = undefined;
  }

  // ── inbound ───────────────────────────────────────────────────────────────

  #onFrame(data: unknown): void {
    this.#heartbeat.alive();
    let message: { type?: unknown; id?: unknown; payload?: never; sequence?: unknown };
    try {
      message = JSON.parse(String(data));
    } catch (cause) {
      this.#fail('invalid_frame', 'ATPWebSocket: a frame was not JSON', cause);
      return;
    }
    const payload = message.payload as never;
    const { type } = message;
    if (type === 'connected') this.#onConnected(payload);
    else if (type === 'subscribed') this.#onSubscribed(payload);
    else if (type === 'pong') this.#session.observePosition(payload);
    else if (type === 'resumed') this.#onResumed(message.id, payload);
    else if (type === 'error') this.#onServerError(message as unknown as ErrorMessage);
    else if (typeof type === 'string' && typeof message.sequence === 'number')
      this.#onData(message as DataFrame);
  }

  #onConnected(payload: { client_id: string } & StreamPosition): void {
    clearTimeout(this.#connectTimer);
    this.#clientId = payload.client_id;
    this.#attempts = 0;
    this.#connectedAt = { epoch: payload.epoch, offset: payload.offset };
    const entries = this.#subscriptions.list();
    // A reconnect resumes every subscription at once, except new ones that asked for their own replay.
    const restored = entries.filter((entry) => entry.sent || entry.from === undefined);
    const resume = this.#session.resumePayload(restored.map(({ topic, filter }) => ({ topic, filter })));
    if (resume) {
      this.#resumeId = this.#nextId();
      this.#sendNow({ type: 'resume', id: this.#resumeId, payload: resume });
    } else {
      this.#session.observePosition(payload);
    }
    for (const entry of entries) {
      if (!resume || !restored.includes(entry)) this.#sendSubscribe(entry);
      entry.sent = true;
    }
    this.#setState('open');
    this.#heartbeat.start();
    for (const frame of this.#queue.splice(0)) this.#write(frame);
    this.#emit('connect', { clientId: payload.client_id, resumed: resume !== undefined });
    this.#waiter?.resolve();
    this.#waiter = undefined;
  }

  #onSubscribed(payload: SubscribedMessage['payload']): void {
    const gap = this.#session.onSubscribed(payload);
    const subscription = { topic: payload.topic, filter: payload.filter as Filter };
    this.#emit('subscribed', subscription);
    if (gap) this.#emit('sequence_gap', { ...gap, subscription });
  }

  #onResumed(id: unknown, payload: ResumedMessage['payload']): void {
    if (id === this.#resumeId) this.#resumeId = undefined;
    const gap = this.#session.onResumed(payload);
    if (gap) this.#emit('sequence_gap', gap);
  }

  #onServerError(message: ErrorMessage): void {
    const { code, message: text } = message.payload ?? {};
    this.#fail('server_error', `ATPWebSocket: server error ${code}: ${text}`, message, code);
    if (message.id === undefined || message.id !== this.#resumeId || !this.#connectedAt) return;
    // The server would not resume: subscribe afresh; its numbering restarts, so report the gap.
    this.#resumeId = undefined;
    const gap = this.#session.restart(this.#connectedAt, GapReason.UnknownPosition);
    for (const entry of this.#subscriptions.list()) this.#sendSubscribe(entry);
    this.#emit('sequence_gap', gap);
  }

  #onData(message: DataFrame): void {
    const verdict = this.#session.onData(message.sequence, message);
    if (!verdict.deliver) return;
    if (verdict.gap) this.#emit('sequence_gap', verdict.gap);
    const { type, epoch, offset } = message;
    const meta = { sequence: verdict.sequence, type, epoch, offset } as MessageMeta;
    if (!RESERVED.has(type)) this.#emit(type as 'test_progress', message.payload as never, meta as never);
    this.#emit('message', message as never, meta);
  }

  // ── outbound ──────────────────────────────────────────────────────────────

  #sendSubscribe(entry: SubscriptionEntry): void {
    const { topic, filter } = entry;
    const from = entry.sent ? undefined : entry.from;
    entry.sent = true;
    this.#sendNow({
      type: 'subscribe',
      id: this.#nextId(),
      payload: from ? { topic, filter, from } : { topic, filter },
    });
  }

  #sendUnsubscribe(removed: SubscriptionEntry[], payload: { topic: string; filter?: Filter }): void {
    if (this.#state === 'open' && removed.some((entry) => entry.sent)) {
      this.#sendNow({ type: 'unsubscribe', id: this.#nextId(), payload });
    }
  }

  #sendNow(message: ClientMessage): void {
    this.#write(JSON.stringify(message));
  }

  #write(frame: string): void {
    const socket = this.#socket;
    if (socket?.readyState !== OPEN) return;
    try {
      socket.send(frame);
    } catch (cause) {
      this.#fail('socket_error', 'ATPWebSocket: send failed', cause);
    }
  }

  #nextId(): number {
    return ++this.#requestId;
  }

  // ── events ────────────────────────────────────────────────────────────────

  #fail(code: ClientErrorCode, message: string, event?: unknown, serverCode?: ErrorCode): void {
    this.#emit('error', { event, error: new ATPWebSocketError(code, message, { cause: event, serverCode }) });
  }

  #emit<E extends keyof ATPWebSocketEvents>(event: E, ...args: Parameters<ATPWebSocketEvents[E]>): void {
    try {
      (this.#emitter.emit as (event: E, ...args: unknown[]) => boolean)(event, ...args);
    } catch (error) {
      // A throwing handler must not corrupt the client's state: report it like any uncaught error.
      setTimeout(() => {
        throw error;
      });
    }
  }
}
