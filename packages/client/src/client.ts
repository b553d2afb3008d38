import {
  CloseCode,
  type ErrorCode,
  type Filter,
  GapReason,
  MAX_RESUME_SUBSCRIPTIONS,
  type ReplayFrom,
} from '@atp/ws-protocol';
import type {
  ClientMessage,
  DeliveredDataMessage,
  ErrorMessage,
  ResumedMessage,
  StreamPosition,
  SubscribedMessage,
} from '@atp/ws-protocol';
import { EventEmitter } from 'eventemitter3';
import { ATPWebSocketError, type ClientErrorCode, esmOnly } from './errors.js';
import type {
  ATPWebSocketEvents,
  MessageMeta,
  SubscribeOptions,
  Subscription,
  RuntimeTopic,
  SubscriptionEvents,
  TopicFilter,
  TopicName,
} from './events.js';
import { FULL } from './features.js';
import { DeliveredHistory } from './history.js';
import { type ATPWebSocketOptions, type Logger, resolveOptions } from './options.js';
import { type Replay, type SequenceGap, SessionTracker } from './resume.js';
import type { ConnectionState } from './state.js';
import {
  type Delivery,
  type SubscriptionEntry,
  type SubscriptionRef,
  SubscriptionRegistry,
} from './subscriptions.js';
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
 * Bytes of topics and filters a resume carries for subscriptions made while away (those the server
 * held always go): the server's default limit of subscriptions per connection, and well under its
 * default message size limit. The rest are subscribed one by one after it.
 */
const RESUME_BYTES = 16 * 1024;
/** `CloseCode.MessageTooBig`, as a number: the IIFE build leaves the `CloseCode` table out. */
const MESSAGE_TOO_BIG = 1009;
/**
 * Pacing of subscribe/unsubscribe requests, under the server's default limit (50 messages/s,
 * bursts of 100) with room left for pings and raw sends: bursts of 40, then 20 per second,
 * at most 32 waiting for their answer (the server answers more than 64 queued ones with `rate_limited`).
 */
const BURST = 40;
const PER_MS = 0.02;
const MAX_IN_FLIGHT = 32;
/** How long the messages of a subscription are gathered into one `batch` event: about one frame. */
const BATCH_MS = 16;
/** Delay before re-sending requests the server dropped or refused for rate. */
const RETRY_MS = 1000;

/** A subscribe or unsubscribe waiting for its answer. */
interface PendingRequest {
  readonly entry: SubscriptionEntry;
  readonly subscribe: boolean;
  /** The entry's first subscribe of the session (its `from` replay continues after a disconnect). */
  readonly first?: boolean;
  /** The references that asked for the history this request replays. */
  readonly target?: SubscriptionRef[];
}

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
  // #region ESM/CJS only
  /** WebSocket close codes of the protocol. */
  static readonly CloseCode = CloseCode;
  // #endregion
  /** Reasons of `sequence_gap`. */
  static readonly GapReason = GapReason;

  readonly #emitter = new EventEmitter<ATPWebSocketEvents>();
  readonly #subscriptions = new SubscriptionRegistry();
  readonly #session = new SessionTracker();
  readonly #socket: ReconnectingSocket;
  readonly #maxQueued: number;
  readonly #logger: Logger | undefined;
  readonly #history = new DeliveredHistory();
  /** How many per-subscription message listeners exist (messages are matched only when some do). */
  #routed = 0;
  #tokens = BURST;
  #tokensAt = 0;
  #perMs = PER_MS;
  /** Requests sent again after a rate limit: their first answer may still come. */
  #late = new Map<unknown, PendingRequest>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Subscriptions sent in the connection's `resume`, confirmed by `resumed`. */
  #restoring: SubscriptionEntry[] = [];
  #clientId: string | undefined;
  /** Position of the current connection's `connected`. */
  #connectedAt: StreamPosition | undefined;
  #queue: string[] = [];
  #requestId = 0;
  #resumeId: number | undefined;
  /** Subscribe and unsubscribe requests sent on this connection and not answered yet, by id. */
  #pending = new Map<unknown, PendingRequest>();
  /** Set by `disconnect()`: the next `connect()` starts a fresh session. */
  #fresh = false;

  /** Creates a client; nothing connects until {@link ATPWebSocket.connect}. */
  constructor(options: ATPWebSocketOptions = {}) {
    if (FULL && options.clientId !== undefined && !CLIENT_ID.test(options.clientId)) {
      throw new TypeError(`ATPWebSocket: clientId must match ${CLIENT_ID}`);
    }
    if (!FULL) {
      for (const key of ['clientId', 'query', 'token'] as const)
        if (options[key] !== undefined) throw esmOnly(`the ${key} option`);
      for (const key of ['url', 'query', 'token', 'retryDelay'] as const)
        if (typeof options[key] === 'function') throw esmOnly(`a ${key} function`);
    }
    const resolved = resolveOptions(options);
    this.#maxQueued = FULL ? resolved.maxQueuedMessages : 0;
    this.#logger = resolved.logger ?? undefined;
    this.#clientId = options.clientId;
    this.#socket = new ReconnectingSocket(resolved, {
      emit: (event, ...args) => {
        // Before the reconnect: its resume must not carry the subscription that was too large again.
        if (event === 'disconnect' && (args[0] as { code: number }).code === MESSAGE_TOO_BIG)
          this.#onTooLarge();
        this.#emit(event, ...args);
      },
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

  // #region ESM/CJS only
  /**
   * The stream position this connection has reached: every data message at or before it that the
   * subscriptions matched has been delivered (or reported with `sequence_gap`). `undefined` before
   * the first `connected`. ESM/CJS builds only.
   */
  get position(): StreamPosition | undefined {
    return this.#session.position;
  }
  // #endregion

  /** The wanted subscriptions and how many references hold each. */
  get subscriptions(): ReadonlyArray<{ topic: string; filter: Filter; refs: number }> {
    return this.#subscriptions
      .list()
      .map(({ topic, filter, refs }) => ({ topic, filter, refs: refs.length }));
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
      if (FULL) this.#history.clear();
      this.#subscriptions.resetSent();
    }
    return this.#socket.connect();
  }

  /** Closes the connection (code 1000) and stops reconnecting. Subscriptions are kept for a later `connect()`. */
  disconnect(): void {
    this.#fresh = true;
    this.#queue = [];
    this.#socket.close(
      new ATPWebSocketError('disconnected', FULL ? 'disconnect() called before connected' : ''),
    );
  }

  /**
   * Subscribes to a topic, optionally filtered. Identical subscriptions (same
   * topic, equal filter) share one wire subscription. Returns a {@link Subscription}:
   * calling it (or its `unsubscribe()`) releases just this reference; the wire
   * `unsubscribe` goes with the last one. With `from`, this reference gets the history
   * first, also when another reference already holds the subscription (what this
   * client already received is replayed locally, the rest comes from the server).
   *
   * @example
   * const sub = ws.subscribe('logs', { suite_execution_id: 123, level: ['error', 'critical'] });
   * sub.on('message', (entry) => console.log(entry.payload.message));
   * await sub.ready;
   * sub.unsubscribe();
   */
  subscribe<T extends TopicName>(topic: T, filter?: TopicFilter<T>, options?: SubscribeOptions): Subscription;
  /** A topic known only at run time (typed `string`): the server checks it, not the compiler. */
  subscribe<S extends string>(
    topic: S & RuntimeTopic<S>,
    filter?: Filter,
    options?: SubscribeOptions,
  ): Subscription;
  subscribe(topic: string, filter?: Filter, options: SubscribeOptions = {}): Subscription {
    const { from, signal } = options;
    if (!FULL && (from || signal)) throw esmOnly("subscribe's from and signal");
    const ref = this.#subscriptions.add(topic, filter, from, signal !== undefined);
    const { entry } = ref;
    const release = (): void => {
      if (!this.#subscriptions.release(ref)) return;
      if (FULL) {
        signal?.removeEventListener('abort', release);
        this.#routed -= ref.messageListeners.length + ref.batchListeners.length;
        ref.messageListeners.length = ref.batchListeners.length = 0;
        this.#settle(ref, new ATPWebSocketError('aborted', `subscription to '${topic}' released`));
      }
      this.#reconcile();
    };
    if (!FULL) {
      // The IIFE build's handle is the release function alone.
      this.#reconcile();
      return release as Subscription;
    }
    const handle = { topic: entry.topic, filter: entry.filter, unsubscribe: release };
    if (entry.onServer && entry.pending === undefined && !from) this.#settle(ref);
    if (from) {
      this.#history.attach(ref, from);
      entry.historyWanted.push(ref);
    }
    if (signal?.aborted) release();
    signal?.addEventListener('abort', release, { once: true });
    this.#reconcile();
    return Object.assign(release, handle, {
      ready: ref.ready as Promise<void>,
      on: <E extends keyof SubscriptionEvents>(event: E, handler: SubscriptionEvents[E]) => {
        const routed = event !== 'error';
        const list = (
          event === 'message' ? ref.messageListeners : routed ? ref.batchListeners : ref.errorListeners
        ) as unknown[];
        if (ref.released) return () => {};
        list.push(handler);
        if (routed) this.#routed += 1;
        return () => {
          const index = list.indexOf(handler);
          if (index < 0) return;
          list.splice(index, 1);
          if (routed) this.#routed -= 1;
        };
      },
    });
  }

  // #region ESM/CJS only
  /**
   * The messages of a subscription as an async iterator; leaving the loop (`break`, `return`,
   * a throw) or aborting `signal` releases the subscription. A refusal by the server throws.
   * ESM/CJS builds only (the IIFE build does not route messages per subscription).
   *
   * @example
   * for await (const message of ws.iterate('logs', { suite_execution_id: 123 })) {
   *   if (message.payload.level === 'error') break;
   * }
   */
  iterate<T extends TopicName>(
    topic: T,
    filter?: TopicFilter<T>,
    options?: SubscribeOptions,
  ): AsyncGenerator<DeliveredDataMessage, void, undefined>;
  /** A topic known only at run time (typed `string`): the server checks it, not the compiler. */
  iterate<S extends string>(
    topic: S & RuntimeTopic<S>,
    filter?: Filter,
    options?: SubscribeOptions,
  ): AsyncGenerator<DeliveredDataMessage, void, undefined>;
  async *iterate(
    topic: string,
    filter?: Filter,
    options: SubscribeOptions = {},
  ): AsyncGenerator<DeliveredDataMessage, void, undefined> {
    const subscription = this.subscribe(topic as TopicName, filter, options);
    const queue: DeliveredDataMessage[] = [];
    let failure: ATPWebSocketError | undefined;
    let wake = (): void => {};
    subscription.on('message', (message) => {
      queue.push(message);
      wake();
    });
    subscription.on('error', (error) => {
      failure = error;
      wake();
    });
    options.signal?.addEventListener('abort', () => wake());
    try {
      for (;;) {
        const message = queue.shift();
        if (message) {
          yield message;
          continue;
        }
        if (failure) throw failure;
        if (options.signal?.aborted) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      subscription.unsubscribe();
    }
  }
  // #endregion

  /**
   * The counterpart of a plain `subscribe(topic, filter?)`: releases, for each subscription of
   * `topic` (or exactly `topic` + `filter`), one reference taken without a `signal`. References
   * held through a signal (as the React hooks do) are never released by it, so one owner's
   * cleanup never cancels another owner's subscription.
   */
  unsubscribe<T extends TopicName>(topic: T, filter?: TopicFilter<T>): void;
  /** A topic known only at run time (typed `string`). */
  unsubscribe<S extends string>(topic: S & RuntimeTopic<S>, filter?: Filter): void;
  unsubscribe(topic: string, filter?: Filter): void {
    for (const ref of this.#subscriptions.plainRefs(topic, filter)) {
      this.#subscriptions.release(ref);
      if (FULL) this.#settle(ref, new ATPWebSocketError('aborted', `subscription to '${topic}' released`));
    }
    this.#reconcile();
  }

  /** How many subscribe/unsubscribe requests wait for the server's answer (0 once both sides agree). */
  get pendingRequests(): number {
    return this.#pending.size + this.#subscriptions.all().filter((e) => this.#wants(e) !== undefined).length;
  }

  /** Registers a handler; returns a function that removes it. */
  on<E extends keyof ATPWebSocketEvents>(event: E, handler: ATPWebSocketEvents[E]): () => void {
    this.#emitter.on(event, handler as never);
    return () => this.off(event, handler);
  }

  // #region ESM/CJS only
  /** Registers a handler for the next occurrence only; returns a function that removes it. */
  once<E extends keyof ATPWebSocketEvents>(event: E, handler: ATPWebSocketEvents[E]): () => void {
    const once = Object.assign(
      (...args: unknown[]) => {
        this.#emitter.off(event, once as never);
        (handler as (...args: unknown[]) => void)(...args);
      },
      { handler },
    );
    this.#emitter.on(event, once as never);
    return () => this.off(event, handler);
  }
  // #endregion

  /** Removes a handler (every handler of the event when none is given). */
  off<E extends keyof ATPWebSocketEvents>(event: E, handler?: ATPWebSocketEvents[E]): void {
    // Without `once` (the IIFE build), no handler is wrapped.
    if (handler === undefined || !FULL) {
      this.#emitter.off(event, handler as never);
      return;
    }
    for (const fn of this.#emitter.listeners(event)) {
      if (fn === handler || (fn as { handler?: unknown }).handler === handler) this.#emitter.off(event, fn);
    }
  }

  // #region ESM/CJS only
  /**
   * Sends a raw client message now when the socket is open, else queues it until the
   * next `connected` (at most `maxQueuedMessages`; the oldest is dropped with an `error` event):
   * a message given while the socket is closing is queued, never dropped silently.
   * Prefer {@link ATPWebSocket.subscribe}: subscriptions sent this way are not restored.
   */
  send(message: ClientMessage): void {
    const frame = JSON.stringify(message);
    if (this.state === 'open' && this.#socket.send(frame)) return;
    if (this.#queue.push(frame) > this.#maxQueued) {
      this.#queue.shift();
      this.#fail('queue_overflow', 'send queue full, dropped the oldest message');
    }
  }
  // #endregion

  // #region ESM/CJS only
  /** Drops the current connection (if any) and connects again at once, resuming the session. */
  reconnect(): Promise<void> {
    return this.#socket.reconnect();
  }
  // #endregion

  // ── inbound ───────────────────────────────────────────────────────────────

  #onFrame(data: unknown): void {
    this.#socket.alive();
    let message: { type?: unknown; id?: unknown; payload?: never; sequence?: unknown };
    try {
      message = JSON.parse(String(data));
    } catch (cause) {
      this.#fail('invalid_frame', FULL ? 'a frame was not JSON' : '', cause);
      return;
    }
    const payload = message.payload as never;
    const { type } = message;
    if (type === 'connected') this.#onConnected(payload);
    else if (type === 'subscribed') this.#onSubscribed(message.id, payload);
    else if (type === 'unsubscribed') this.#onUnsubscribed(message.id);
    else if (type === 'pong') this.#session.observePosition(payload);
    else if (type === 'resumed') this.#onResumed(message.id, payload);
    else if (type === 'error') this.#onServerError(message as unknown as ErrorMessage);
    else if (FULL && type === 'resource') this.#emit('resource', message as never);
    else if (typeof type === 'string' && typeof message.sequence === 'number')
      this.#onData(message as DataFrame, data as string);
  }

  #onConnected(payload: { client_id: string } & StreamPosition): void {
    this.#clientId = payload.client_id;
    this.#session.beginConnection();
    this.#connectedAt = { epoch: payload.epoch, offset: payload.offset };
    // Local history of an epoch the server lost is never replayed to a new `from` subscription.
    if (FULL) this.#history.observeEpoch(payload.epoch);
    // History asked for on the lost connection and never answered is asked for again.
    if (FULL)
      for (const { entry, first, target } of this.#pending.values()) {
        if (first && target) entry.sent = false;
        for (const ref of target ?? []) if (!ref.released && ref.held) entry.historyWanted.push(ref);
      }
    this.#pending.clear();
    this.#late.clear();
    this.#tokens = BURST;
    this.#perMs = PER_MS;
    for (const entry of this.#subscriptions.all()) {
      entry.pending = undefined;
      entry.onServer = false;
      if (entry.refs.length === 0) this.#subscriptions.delete(entry);
    }
    const entries = this.#subscriptions.list();
    // A reconnect resumes every subscription at once, except new ones that asked for their own replay
    // and those of a topic the protocol refuses (docs/PROTOCOL.md#subscribe: 1 to 128 characters),
    // which would make the whole resume malformed: they are subscribed on their own, and refused there.
    const resumable = entries.filter(
      ({ topic, sent, from, resumeFrom }) =>
        topic?.length > 0 && topic.length < 129 && (!FULL || sent || (from ?? resumeFrom) === undefined),
    );
    // A resume carries at most MAX_RESUME_SUBSCRIPTIONS: those the server held first (they have messages
    // to resume); the others are new, made while away, and are subscribed on their own like any new one.
    // New ones also stop at RESUME_BYTES of topics and filters, so that a resume never outgrows the
    // server's message size limit (a 1009 would refuse them one connection at a time).
    let bytes = 0;
    const restored = resumable
      .sort((a, b) => +b.sent - +a.sent)
      .filter((entry, index) => {
        bytes += entry.key.length; // the topic and the filter's JSON
        return index < MAX_RESUME_SUBSCRIPTIONS && (entry.sent || bytes <= RESUME_BYTES);
      });
    if (FULL && resumable.length > restored.length && resumable[restored.length]?.sent)
      this.#fail(
        'server_error',
        `more than ${MAX_RESUME_SUBSCRIPTIONS} subscriptions to resume: those past it are subscribed again, and what they missed while disconnected is lost`,
      );
    const resume = this.#session.resumePayload(restored.map(({ topic, filter }) => ({ topic, filter })));
    this.#restoring = resume ? restored : [];
    if (FULL)
      // A resumed subscription goes on being delivered from the resume's position; the others start over.
      for (const entry of entries)
        entry.coveredFrom = resume && restored.includes(entry) ? (entry.coveredFrom ?? resume) : undefined;
    if (resume) {
      this.#resumeId = this.#nextId();
      this.#sendNow({ type: 'resume', id: this.#resumeId, payload: resume });
      for (const entry of restored) entry.sent = entry.onServer = true;
    } else {
      this.#session.observePosition(payload);
    }
    if (FULL) for (const frame of this.#queue.splice(0)) this.#socket.send(frame);
    this.#socket.opened();
    this.#reconcile();
    this.#emit('connect', { clientId: payload.client_id, resumed: resume !== undefined });
  }

  #onSubscribed(id: unknown, payload: SubscribedMessage['payload']): void {
    // The stream may have changed epoch under a live connection (Redis restarted empty).
    if (FULL) this.#history.observeEpoch(payload.epoch);
    const request = this.#answered(id);
    const entry = request?.entry;
    // Only a `from` subscribe (ESM/CJS builds) is answered with a history, and so with a gap.
    let gap: SequenceGap | undefined;
    if (FULL) gap = this.#session.onSubscribed(payload, request?.first ? entry : undefined, request?.target);
    else this.#session.observePosition(payload);
    if (entry) {
      if (entry.pending === id) entry.pending = undefined;
      entry.onServer = true;
      if (FULL) for (const ref of entry.refs) if (!ref.held) this.#settle(ref);
      if (FULL) entry.coveredFrom ??= { epoch: payload.epoch, offset: payload.offset };
    }
    if (FULL) {
      for (const ref of request?.target ?? []) this.#settle(ref);
      if (request?.target && !payload.history?.replayed) this.#completeHistory({ target: request.target });
    }
    const { topic, epoch, offset } = payload;
    const filter = payload.filter as Filter;
    this.#emit('subscribed', { topic, filter, epoch, offset });
    if (gap) this.#emit('sequence_gap', { ...gap, subscription: { topic, filter } });
    this.#reconcile();
  }

  #onUnsubscribed(id: unknown): void {
    const entry = this.#answered(id)?.entry;
    if (entry) {
      if (entry.pending === id) entry.pending = undefined;
      entry.onServer = false;
      if (FULL) entry.coveredFrom = undefined;
    }
    this.#reconcile();
  }

  #onResumed(id: unknown, payload: ResumedMessage['payload']): void {
    if (id === this.#resumeId) this.#resumeId = undefined;
    for (const entry of this.#restoring.splice(0)) {
      if (FULL && !entry.refused) for (const ref of entry.refs) if (!ref.held) this.#settle(ref);
    }
    const gap = this.#session.onResumed(payload);
    if (gap) this.#emit('sequence_gap', gap);
  }

  #onServerError(message: ErrorMessage): void {
    const { code, message: text, details } = message.payload ?? {};
    const error = new ATPWebSocketError('server_error', `server error ${code}: ${text}`, {
      cause: message,
      serverCode: code,
    });
    this.#emit('error', { event: message, error });
    const { id } = message;
    const request = this.#pending.get(id);
    if (code === 'rate_limited' || code === 'internal_error') {
      // Slow down, and send again what was refused. Without an id, frames were dropped, which
      // ones is unknown: every request still unanswered after a while is sent again (requests are
      // idempotent); a late answer to the first one still counts.
      this.#tokens = 0;
      this.#perMs = Math.max(this.#perMs / 2, 0.001);
      if (request) this.#requeue(id);
      else if (id === undefined) {
        const unanswered = [...this.#pending.keys()];
        setTimeout(() => {
          for (const key of unanswered) this.#requeue(key);
          this.#reconcile();
        }, RETRY_MS);
      }
      this.#schedule(RETRY_MS);
      return;
    }
    if (request) {
      this.#answered(id);
      request.entry.pending = undefined;
      if (request.subscribe) this.#refuse(request.entry, error);
      this.#reconcile();
      return;
    }
    if (id === undefined || id !== this.#resumeId || !this.#connectedAt) return;
    const refused = details as { topic?: string; filter?: Filter } | undefined;
    if (typeof refused?.topic === 'string') {
      // One subscription of the resume was refused; the others are resumed.
      const entry = this.#subscriptions.find(refused.topic, refused.filter);
      if (entry) this.#refuse(entry, error);
      return;
    }
    // The server would not resume at all: subscribe afresh; its numbering restarts, so report the gap.
    this.#resumeId = undefined;
    this.#restoring = [];
    const gap = this.#session.restart(this.#connectedAt, GapReason.UnknownPosition);
    for (const entry of this.#subscriptions.all()) entry.onServer = false;
    this.#reconcile();
    this.#emit('sequence_gap', gap);
  }

  #onData(message: DataFrame, frame: string): void {
    const verdict = this.#session.onData(message.sequence, message);
    if (verdict.gap) this.#emit('sequence_gap', verdict.gap);
    const replay = verdict.replay;
    const { type, epoch, offset } = message;
    const meta = { sequence: verdict.sequence, type, epoch, offset } as MessageMeta;
    if (
      FULL &&
      replay?.target &&
      (!verdict.deliver ||
        this.#history.deliveredBefore(
          message,
          replay.through,
          this.#session.floor,
          this.#subscriptions.all(),
        ))
    ) {
      // History a reference asked for that this client delivered before (on an earlier connection,
      // so the server sends it again): it goes to that reference alone.
      this.#history.redeliver(replay.target, { message: message as never, meta }, this.#call);
      if (replay.left === 0) this.#completeHistory(replay);
      return;
    }
    if (!verdict.deliver) return;
    if (!RESERVED.has(type)) this.#emit(type as 'test_progress', message.payload as never, meta as never);
    this.#emit('message', message as never, meta);
    if (!FULL) return;
    const delivery: Delivery = { message: message as never, meta };
    const entries = this.#routed > 0 ? this.#subscriptions.all() : [];
    this.#history.deliver(delivery, frame, replay?.target, entries, this.#call);
    if (replay?.target && replay.left === 0) this.#completeHistory(replay);
  }

  /** Sends a request again: its entry is free for a new one; a late answer to this one still applies. */
  #requeue(id: unknown): void {
    const request = this.#pending.get(id);
    if (!request || request.entry.pending !== id) return;
    this.#pending.delete(id);
    this.#late.set(id, request);
    request.entry.pending = undefined;
    if (FULL) request.entry.historyWanted.push(...(request.target ?? []));
  }

  /** Takes the request an answer is for, also one that was sent again since. */
  #answered(id: unknown): PendingRequest | undefined {
    const request = this.#pending.get(id) ?? this.#late.get(id);
    this.#pending.delete(id);
    this.#late.delete(id);
    return request;
  }

  // ── per-subscription delivery ─────────────────────────────────────────────

  /** The history of these references is complete: what they hold back is delivered, in order. */
  #completeHistory(replay: Pick<Replay, 'target'>): void {
    if (!FULL) return;
    for (const ref of replay.target ?? []) {
      const short = this.#history.complete(ref, this.#call);
      this.#settle(ref);
      if (short && !ref.released && !ref.entry.refused) {
        // Older than the last 10,000 messages this client kept, and sent on this connection already.
        const expected = this.#session.lastSequence + 1;
        const { topic, filter } = ref.entry;
        const reason = GapReason.HistoryTruncated;
        this.#emit('sequence_gap', { expected, received: expected, reason, subscription: { topic, filter } });
      }
    }
  }

  /** Calls the message listeners of one reference, each isolated. */
  readonly #call = (ref: SubscriptionRef, delivery: Delivery): void => {
    if (!FULL) return;
    for (const fn of [...ref.messageListeners]) this.#invoke(fn, [delivery.message, delivery.meta]);
    if (ref.batchListeners.length === 0) return;
    // One `batch` per BATCH_MS at most: a UI renders once per frame however fast messages come.
    if (!ref.batch) {
      ref.batch = [];
      setTimeout(() => {
        const batch = ref.batch ?? [];
        ref.batch = undefined;
        if (!ref.released) for (const fn of [...ref.batchListeners]) this.#invoke(fn, [batch]);
      }, BATCH_MS);
    }
    ref.batch.push(delivery);
  };

  /** Settles a reference's `ready` once: confirmed, or refused / released with `error`. */
  #settle(ref: SubscriptionRef, error?: ATPWebSocketError): void {
    if (!FULL || ref.settled) return;
    ref.settled = true;
    if (error) ref.reject(error);
    else ref.resolve();
  }

  /**
   * The server closed with 1009: a message was over its size limit. The culprit is the largest
   * subscription in flight (its own `subscribe`, or one of the `resume`): it is refused and reported,
   * so the next connection does not send it again (a resume too large for other reasons loses its
   * largest subscription each time, and so ends too).
   */
  #onTooLarge(): void {
    const inFlight = [...this.#pending.values()].filter((request) => request.subscribe).map((r) => r.entry);
    if (this.#resumeId !== undefined) inFlight.push(...this.#restoring);
    let largest: SubscriptionEntry | undefined;
    let largestSize = -1;
    for (const entry of inFlight) {
      const size = entry.key.length; // the topic and the filter's JSON
      if (!entry.refused && size > largestSize) [largest, largestSize] = [entry, size];
    }
    if (!largest) return;
    const error = new ATPWebSocketError(
      'message_too_large',
      FULL
        ? `the server closed the connection with 1009 (message too big): the subscription to '${largest.topic}' is refused`
        : '',
    );
    this.#emit('error', { event: { topic: largest.topic, filter: largest.filter }, error });
    this.#refuse(largest, error);
  }

  /** The server refused a subscription: it is never sent again, and each owner is told. */
  #refuse(entry: SubscriptionEntry, error: ATPWebSocketError): void {
    entry.refused = true;
    entry.onServer = false;
    if (FULL) entry.coveredFrom = undefined;
    if (FULL) entry.historyWanted.length = 0;
    if (FULL)
      for (const ref of [...entry.refs]) {
        this.#settle(ref, error);
        this.#completeHistory({ target: [ref] });
        for (const fn of [...ref.errorListeners]) this.#invoke(fn, [error]);
      }
  }

  // ── outbound ──────────────────────────────────────────────────────────────

  /**
   * What `entry` needs from the server now: `true` a subscribe, `false` an unsubscribe,
   * `undefined` nothing (or a request is already waiting for its answer).
   */
  #wants(entry: SubscriptionEntry): boolean | undefined {
    if (entry.pending !== undefined) return undefined;
    const wanted = entry.refs.length > 0 && !entry.refused;
    if (wanted) return !entry.onServer || (FULL && entry.historyWanted.length > 0) ? true : undefined;
    return entry.onServer ? false : undefined;
  }

  /**
   * Brings the server's subscriptions to what the client wants, paced under the server's
   * rate limit (a token bucket) and with a bounded number of requests in flight; each
   * request is matched to its answer by id. Unsubscribes go first: they free room under
   * the server's subscription limits for the subscribes after them.
   */
  #reconcile(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.state !== 'open') return;
    for (const subscribe of [false, true]) {
      for (const entry of this.#subscriptions.all()) {
        const wants = this.#wants(entry);
        if (entry.refs.length === 0 && !entry.onServer && entry.pending === undefined)
          this.#subscriptions.delete(entry);
        if (wants !== subscribe) continue;
        if (!this.#take()) return;
        const id = this.#nextId();
        entry.pending = id;
        const { topic, filter } = entry;
        let request: PendingRequest = { entry, subscribe };
        const payload: { topic: string; filter: Filter; from?: ReplayFrom } = { topic, filter };
        if (subscribe && FULL) {
          const first = !entry.sent;
          let target = entry.historyWanted.splice(0);
          let from = first ? (entry.resumeFrom ?? entry.from) : undefined;
          if (!from && target.length > 0)
            from = target.some((ref) => ref.from === 'start') ? 'start' : target[0]?.from;
          // The history of the entry's first request (or its continuation after a cut) is every
          // reference's: none has received anything of this subscription in this session yet.
          if (first && from) target = [...entry.refs];
          request = { entry, subscribe, first, target: target.length ? target : undefined };
          if (from) payload.from = from;
        }
        if (subscribe) entry.sent = true;
        this.#pending.set(id, request);
        this.#sendNow({
          type: subscribe ? 'subscribe' : 'unsubscribe',
          id,
          payload,
        } as ClientMessage);
      }
    }
  }

  /** Takes one token of the request budget; without one, schedules the next attempt. */
  #take(): boolean {
    if (this.#pending.size >= MAX_IN_FLIGHT) return false;
    const now = Date.now();
    this.#tokens = Math.min(BURST, this.#tokens + (now - this.#tokensAt) * this.#perMs);
    this.#tokensAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.#schedule((1 - this.#tokens) / this.#perMs);
    return false;
  }

  #schedule(ms: number): void {
    this.#timer ??= setTimeout(() => this.#reconcile(), ms);
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

  /** Calls every listener of `event`, each isolated: one that throws never starves the others. */
  #emit<E extends keyof ATPWebSocketEvents>(event: E, ...args: Parameters<ATPWebSocketEvents[E]>): void {
    const listeners = this.#emitter.listeners(event);
    if (event === 'error' && listeners.length === 0) this.#logger?.error((args[0] as { error: Error }).error);
    for (const fn of listeners) this.#invoke(fn, args, event === 'error');
  }

  #invoke(fn: unknown, args: unknown[], isErrorListener = false): void {
    try {
      (fn as (...args: unknown[]) => void)(...args);
    } catch (cause) {
      const error = new ATPWebSocketError('listener_failed', `a listener threw: ${cause}`, { cause });
      if (isErrorListener) this.#logger?.error(error);
      else this.#emit('error', { event: cause, error });
    }
  }
}
