import { CloseCode, type ErrorCode, type Filter, GapReason } from '@atp/ws-protocol';
import type {
  ClientMessage,
  ErrorMessage,
  ResumedMessage,
  StreamPosition,
  SubscribedMessage,
} from '@atp/ws-protocol';
import { EventEmitter } from 'eventemitter3';
import { ATPWebSocketError, type ClientErrorCode } from './errors.js';
import type { ATPWebSocketEvents, MessageMeta, SubscribeOptions, TopicName } from './events.js';
import { type ATPWebSocketOptions, resolveOptions } from './options.js';
import { SessionTracker } from './resume.js';
import type { ConnectionState } from './state.js';
import { type SubscriptionEntry, SubscriptionRegistry } from './subscriptions.js';
import { ReconnectingSocket } from './websocket.js';

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

  readonly #emitter = new EventEmitter<ATPWebSocketEvents>();
  readonly #subscriptions = new SubscriptionRegistry();
  readonly #session = new SessionTracker();
  readonly #socket: ReconnectingSocket;
  readonly #maxQueued: number;
  #clientId: string | undefined;
  /** Position of the current connection's `connected`. */
  #connectedAt: StreamPosition | undefined;
  #queue: string[] = [];
  #requestId = 0;
  #resumeId: number | undefined;
  /** Subscriptions sent on this connection and not answered yet, by request id. */
  #pending = new Map<unknown, SubscriptionEntry>();
  /** Set by `disconnect()`: the next `connect()` starts a fresh session. */
  #fresh = false;

  /** Creates a client; nothing connects until {@link ATPWebSocket.connect}. */
  constructor(options: ATPWebSocketOptions = {}) {
    if (options.clientId !== undefined && !CLIENT_ID.test(options.clientId)) {
      throw new TypeError(`ATPWebSocket: clientId must match ${CLIENT_ID}`);
    }
    const resolved = resolveOptions(options);
    this.#maxQueued = resolved.maxQueuedMessages;
    this.#clientId = options.clientId;
    this.#socket = new ReconnectingSocket(resolved, {
      emit: (event, ...args) => this.#emit(event, ...args),
      frame: (data) => this.#onFrame(data),
      ping: () => this.#sendNow({ type: 'ping', id: this.#nextId() }),
      clientId: () => this.#clientId,
    });
  }

  /** The connection state; the `state` event reports each change. */
  get state(): ConnectionState {
    return this.#socket.state;
  }

  /** The session's `client_id`: the option, else the one the server assigned at the first `connected`. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** Whether the connection is `open`. */
  get isConnected(): boolean {
    return this.state === 'open';
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
    const state = this.state;
    if ((state === 'idle' || state === 'closed') && this.#fresh) {
      this.#fresh = false;
      this.#session.reset();
      this.#subscriptions.resetSent();
    }
    return this.#socket.connect();
  }

  /** Closes the connection (code 1000) and stops reconnecting. Subscriptions are kept for a later `connect()`. */
  disconnect(): void {
    this.#fresh = true;
    this.#queue = [];
    this.#socket.close(new ATPWebSocketError('disconnected', 'disconnect() called before connected'));
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
    if (created && this.state === 'open') this.#sendSubscribe(entry);
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
    if (this.state === 'open') {
      this.#socket.send(frame);
      return;
    }
    if (this.#queue.push(frame) > this.#maxQueued) {
      this.#queue.shift();
      this.#fail('queue_overflow', 'send queue full, dropped the oldest message');
    }
  }

  // ── inbound ───────────────────────────────────────────────────────────────

  #onFrame(data: unknown): void {
    this.#socket.alive();
    let message: { type?: unknown; id?: unknown; payload?: never; sequence?: unknown };
    try {
      message = JSON.parse(String(data));
    } catch (cause) {
      this.#fail('invalid_frame', 'a frame was not JSON', cause);
      return;
    }
    const payload = message.payload as never;
    const { type } = message;
    if (type === 'connected') this.#onConnected(payload);
    else if (type === 'subscribed') this.#onSubscribed(message.id, payload);
    else if (type === 'pong') this.#session.observePosition(payload);
    else if (type === 'resumed') this.#onResumed(message.id, payload);
    else if (type === 'error') this.#onServerError(message as unknown as ErrorMessage);
    else if (typeof type === 'string' && typeof message.sequence === 'number')
      this.#onData(message as DataFrame);
  }

  #onConnected(payload: { client_id: string } & StreamPosition): void {
    this.#clientId = payload.client_id;
    this.#session.beginConnection();
    this.#connectedAt = { epoch: payload.epoch, offset: payload.offset };
    this.#pending.clear();
    const entries = this.#subscriptions.list().filter((entry) => !entry.refused);
    // A reconnect resumes every subscription at once, except new ones that asked for their own replay.
    const restored = entries.filter((entry) => entry.sent || (entry.from ?? entry.resumeFrom) === undefined);
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
    for (const frame of this.#queue.splice(0)) this.#socket.send(frame);
    this.#socket.opened();
    this.#emit('connect', { clientId: payload.client_id, resumed: resume !== undefined });
  }

  #onSubscribed(id: unknown, payload: SubscribedMessage['payload']): void {
    const gap = this.#session.onSubscribed(payload, this.#pending.get(id));
    this.#pending.delete(id);
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
    this.#fail('server_error', `server error ${code}: ${text}`, message, code);
    const entry = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    // A subscription the server can never accept must not spoil every later resume.
    if (entry && (code === 'unknown_topic' || code === 'invalid_filter')) entry.refused = true;
    if (message.id === undefined || message.id !== this.#resumeId || !this.#connectedAt) return;
    // The server would not resume: subscribe afresh; its numbering restarts, so report the gap.
    this.#resumeId = undefined;
    const gap = this.#session.restart(this.#connectedAt, GapReason.UnknownPosition);
    for (const entry of this.#subscriptions.list()) if (!entry.refused) this.#sendSubscribe(entry);
    this.#emit('sequence_gap', gap);
  }

  #onData(message: DataFrame): void {
    const verdict = this.#session.onData(message.sequence, message);
    if (verdict.gap) this.#emit('sequence_gap', verdict.gap);
    if (!verdict.deliver) return;
    const { type, epoch, offset } = message;
    const meta = { sequence: verdict.sequence, type, epoch, offset } as MessageMeta;
    if (!RESERVED.has(type)) this.#emit(type as 'test_progress', message.payload as never, meta as never);
    this.#emit('message', message as never, meta);
  }

  // ── outbound ──────────────────────────────────────────────────────────────

  #sendSubscribe(entry: SubscriptionEntry): void {
    const { topic, filter } = entry;
    const from = entry.sent ? undefined : (entry.resumeFrom ?? entry.from);
    const id = this.#nextId();
    entry.sent = true;
    this.#pending.set(id, entry);
    this.#sendNow({ type: 'subscribe', id, payload: from ? { topic, filter, from } : { topic, filter } });
  }

  #sendUnsubscribe(removed: SubscriptionEntry[], payload: { topic: string; filter?: Filter }): void {
    if (this.state === 'open' && removed.some((entry) => entry.sent)) {
      this.#sendNow({ type: 'unsubscribe', id: this.#nextId(), payload });
    }
  }

  #sendNow(message: ClientMessage): void {
    this.#socket.send(JSON.stringify(message));
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
