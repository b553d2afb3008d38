import {
  type ClientMessage,
  CloseCode,
  canonicalSubscriptionKey,
  ErrorCode,
  type Filter,
  GapReason,
  type MessageId,
  matchesSubscription,
  type ProtocolErrorInfo,
  PROTOCOL_VERSION,
  parseClientMessage,
  type ReplayFrom,
  type ResourceSnapshot,
  type ResumeMessage,
  type SubscribeMessage,
  type UnsubscribeMessage,
} from '@atp/ws-protocol';
import type { WebSocket } from 'ws';
import type { HistoryRead, StreamEntry } from './broker.js';
import { transportOf } from './fallback-socket.js';
import { TokenBucket } from './limits.js';
import { Outbox, type OutboxOwner, type PreparedEntry, prepareEntry } from './outbound.js';
import {
  REPLAY_PAGES_PER_TURN,
  REPLAY_SLICE_CHECK_EVERY,
  replaySliceSpent,
  replayTurn,
} from './replay-turns.js';
import { answerGetResource } from './resources.js';
import type { IndexedSubscription } from './subscription-index.js';
import type { ClientInfo, Principal } from './types.js';
import type { HubContext } from './hub-context.js';

interface ConnectionSubscription extends IndexedSubscription<Connection> {
  readonly key: string;
  /**
   * Every entry of the connection's epoch after this offset that matches was
   * delivered through this subscription (or is gone from history): a replay for
   * another subscription does not send it again.
   */
  coveredAfter: number;
}

/** A removed subscription, remembered so that a later replay does not repeat what it delivered. */
interface PastSubscription {
  readonly topic: string;
  readonly filter: Filter;
  readonly coveredAfter: number;
  /** The connection's offset when it was removed. */
  readonly until: number;
  /** Length of its canonical key: what it holds in memory, roughly. */
  readonly bytes: number;
}

type Position = { epoch: string; offset: number };

/** How one replay runs: where it reads from, which history it sends, and how the request is answered. */
interface ReplayPlan {
  /** Where reading starts. */
  readonly from: ReplayFrom;
  /** Entries up to this offset (of the connection's epoch) are history, sent when `wanted`; later ones are catch-up. */
  boundary: number;
  /** Picks the history entries to send. */
  wanted(entry: StreamEntry): boolean;
  /**
   * The first read came back: adjusts the connection to it (epoch, gap) and
   * says whether the history is complete, before anything is counted.
   */
  begin(first: HistoryRead): { complete: boolean; reason?: GapReason };
  /** Answers the request, once the history to send has been counted. */
  answer(replayed: number, result: { complete: boolean; reason?: GapReason }): void;
  /** The history was sent (before catching up with live entries). */
  sent?(): void;
}

/** Entries read from the broker at a time during a replay: at most what one turn of the event loop handles. */
export const REPLAY_PAGE_SIZE = 1000;

/**
 * Bytes a replay lets wait in this process for a socket before it waits for
 * the socket to drain: the kernel's own socket buffer holds more, and every
 * byte held here is garbage to collect, once per joining dashboard.
 */
export const REPLAY_BUFFERED_BYTES = 256 * 1024;

/** One accepted WebSocket: its subscriptions, sequence, outbound queue and replays. */
export class Connection implements OutboxOwner {
  readonly connectedAt = Date.now();
  lastActivity = Date.now();
  /** Heartbeat: set when the pong answering the last ping arrives, cleared when a ping is sent. */
  alive = true;
  readonly subscriptions = new Map<string, ConnectionSubscription>();
  readonly #ctx: HubContext;
  readonly #outbox: Outbox;
  readonly #bucket: TokenBucket;
  /** History scanned by replays, in pages: what a client may make the server read. */
  readonly #replayBucket: TokenBucket;
  #refusedInRow = 0;
  /**
   * Refusals still tolerated: `closeAfterRefused` within about a minute. It
   * refills, so a client that overran the rate now and then is not closed
   * days later for refusals long past, while a flood spends it in a moment.
   */
  readonly #refusals: TokenBucket;
  #chain: Promise<void> = Promise.resolve();
  /** Requests received and not yet answered (bounded by `maxQueuedRequests`). */
  #queued = 0;
  /**
   * The stream position this connection is complete up to: every entry up to
   * it that its subscriptions match was handed to the outbox. Live entries at
   * or before it are not sent again (a replay may read ahead of this process,
   * which reads a shared stream a little later).
   */
  #through: Position;
  /** When the entry at `#through` was published (for the lag shown to operators). */
  #throughPublishedAt: number | undefined;
  /** While a replay runs, live entries are not delivered: the replay reads them from history, in order. */
  #replaying = false;
  #past: PastSubscription[] = [];
  #pastBytes = 0;
  /** UTF-8 bytes of the canonical keys of the subscriptions held (bounded by `maxSubscriptionBytes`). */
  #subscriptionBytes = 0;
  #pingData: Buffer | undefined;
  #resumedOrSubscribed = false;
  #closed = false;
  #disposed = false;

  constructor(
    ctx: HubContext,
    readonly ws: WebSocket,
    readonly clientId: string,
    readonly principal: Principal | null,
    readonly ip: string,
    /** Earlier connections under this `client_id` that this process has seen. */
    readonly reconnects = 0,
  ) {
    this.#ctx = ctx;
    const { options } = ctx;
    const { messagesPerSecond, burst, closeAfterRefused, replayMessagesPerSecond } = options.rateLimit;
    this.#bucket = new TokenBucket(messagesPerSecond, burst);
    this.#refusals = new TokenBucket(closeAfterRefused / REFUSALS_WINDOW_S, closeAfterRefused - 1);
    const pages = Math.max(1, replayMessagesPerSecond / REPLAY_PAGE_SIZE);
    this.#replayBucket = new TokenBucket(pages, pages);
    this.#outbox = new Outbox(
      ws,
      this,
      ctx.metrics.outbound,
      options.softBufferedBytes,
      options.maxBufferedBytes,
    );
    this.#through = { ...ctx.position() };
    ws.on('message', (data, isBinary) => this.#onFrame(data as Buffer, isBinary));
    ws.on('ping', (data) => this.#onPingFrame(data));
    ws.on('pong', (data) => {
      // Only the answer to the outstanding ping counts: a peer that sends pongs on its own
      // without reading (it cannot echo what it never read) is not kept alive by them.
      if (this.#pingData && data.equals(this.#pingData)) this.alive = true;
    });
  }

  /** Sends a heartbeat ping whose payload the pong must echo. */
  ping(data: Buffer): void {
    this.alive = false;
    this.#pingData = data;
    this.ws.ping(data);
  }

  /** Sends the `connected` greeting. */
  greet(): void {
    const { epoch, offset } = this.#through;
    this.#sendControl({
      type: 'connected',
      payload: {
        client_id: this.clientId,
        protocol: PROTOCOL_VERSION,
        ping_interval: this.#ctx.options.pingInterval / 1000,
        ping_timeout: this.#ctx.options.pingTimeout / 1000,
        epoch,
        offset,
      },
    });
  }

  /** The outbound buffer passed its hard limit: a slow consumer, closed with 1013. */
  outboxOverflowed(): void {
    this.#ctx.metrics.slowConsumerCloses.inc();
    this.#ctx.logger.warn(
      { clientId: this.clientId, ip: this.ip },
      'slow consumer: outbound buffer overflowed, closing with 1013',
    );
    this.close(CloseCode.TryAgainLater, 'slow consumer: outbound buffer overflowed');
  }

  /** Live fan-out entry point: at most once per entry; nothing while a replay reads the stream instead. */
  deliver(entry: PreparedEntry): void {
    if (this.#replaying || this.#closed) return;
    const through = this.#through;
    // Another epoch is one this connection is ahead in (the hub has not read it yet); an offset at or
    // before `through` was delivered already (a message matching several subscriptions included).
    // Nothing here keeps the entry: it is garbage once written, not held by 5,000 idle connections.
    if (entry.epoch !== through.epoch || entry.offset <= through.offset) return;
    through.offset = entry.offset;
    this.#throughPublishedAt = entry.publishedAt;
    this.#outbox.pushData(entry);
  }

  /**
   * The hub moved to a new epoch (the shared stream lost or rewrote its
   * history): what this connection had not received of the old stream is gone,
   * so its numbering gets a hole the client reports as a gap.
   */
  epochChanged(epoch: string): void {
    if (this.#closed || this.#replaying || this.#through.epoch === epoch) return;
    this.#enterEpoch(epoch, 0, true);
  }

  /** Entries of the stream were lost before this process read them: the numbering gets a hole. */
  hole(): void {
    if (this.#closed || this.#replaying || this.subscriptions.size === 0) return;
    this.#ctx.metrics.gaps.inc({ reason: GapReason.HistoryTruncated });
    this.#outbox.pushGap();
  }

  info(): ClientInfo {
    const topics = new Set<string>();
    for (const subscription of this.subscriptions.values()) topics.add(subscription.topic);
    const hub = this.#ctx.position();
    const position = this.#position();
    const behind = position.epoch === hub.epoch ? Math.max(0, hub.offset - position.offset) : 0;
    const oldest = this.#replaying ? this.#throughPublishedAt : this.#outbox.oldestQueuedAt;
    return {
      client_id: this.clientId,
      connected_at: new Date(this.connectedAt).toISOString(),
      subscriptions: [...topics],
      last_activity: new Date(this.lastActivity).toISOString(),
      ip: this.ip,
      server_id: this.#ctx.serverId,
      buffered_bytes: this.#outbox.bufferedBytes,
      last_sequence: this.#outbox.sequence,
      position,
      lag_messages: behind + this.#outbox.queuedMessages,
      lag_seconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
      sent: this.#outbox.sentCount,
      coalesced: this.#outbox.droppedCount,
      replaying: this.#replaying,
      reconnects: this.reconnects,
      transport: transportOf(this.ws),
    };
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbox.clear();
    this.#ctx.release(this);
    this.ws.close(code, reason);
    // A peer that does not complete the closing handshake is cut off.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** True once {@link Connection.dispose} ran. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** True while a replay reads history for this connection. */
  get replaying(): boolean {
    return this.#replaying;
  }

  /** Frees everything the connection holds (called once the socket is closed). */
  dispose(): void {
    this.#disposed = true;
    this.#closed = true;
    this.#outbox.clear();
    this.#past = [];
    this.#pastBytes = 0;
    for (const subscription of this.subscriptions.values()) this.#ctx.index.remove(subscription);
    this.subscriptions.clear();
    this.#subscriptionBytes = 0;
  }

  /**
   * A WebSocket ping frame from the peer: answered like any message, within the
   * rate limit (a flood of them is refused, then closed with 1008, as other
   * floods are), not by `ws` on its own.
   */
  #onPingFrame(data: Buffer): void {
    if (this.#closed || !this.#admit()) return;
    this.ws.pong(data);
  }

  /** Takes one message's token from the rate limit; false (and an error or a close) when refused. */
  #admit(): boolean {
    this.lastActivity = Date.now();
    this.#ctx.metrics.messagesIn.inc();
    if (this.#bucket.take()) {
      this.#refusedInRow = 0;
      return true;
    }
    if (!this.#refusals.take()) {
      this.close(CloseCode.PolicyViolation, 'rate limit exceeded repeatedly');
      return false;
    }
    // One error per run of refusals: answering every flooded frame would amplify the flood.
    if (this.#refusedInRow++ === 0) {
      const { messagesPerSecond, burst } = this.#ctx.options.rateLimit;
      this.#sendError({
        code: ErrorCode.RateLimited,
        message: `rate limit exceeded (${messagesPerSecond} messages/s, bursts of ${burst}); messages are being dropped`,
      });
    }
    return false;
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.#closed || !this.#admit()) return;
    if (isBinary) {
      this.#sendError({
        code: ErrorCode.InvalidMessage,
        message: 'binary frames are not supported; send JSON text',
      });
      return;
    }
    const parsed = parseClientMessage(data.toString('utf8'));
    if (!parsed.ok) {
      this.#sendError(parsed.error);
      return;
    }
    const message = parsed.message;
    for (const { topic, filter, error } of parsed.refused ?? []) {
      this.#refuseSubscription(topic, filter, { ...error, id: message.id });
    }
    if (message.type === 'ping') {
      // Answered at once, even while a replay runs, with the position the client is safe to resume from.
      const { epoch, offset } = this.#position();
      this.#sendControl({ type: 'pong', ...withId(message.id), payload: { epoch, offset } });
      return;
    }
    const limit = this.#ctx.options.maxQueuedRequests;
    if (this.#queued >= limit) {
      this.#sendError({
        code: ErrorCode.RateLimited,
        message: `${limit} requests are already waiting for an answer (a replay may be running); wait for their replies before sending more`,
        id: message.id,
      });
      return;
    }
    // Subscriptions and resumes run one after another, in arrival order, even when hooks or reads are async.
    this.#queued += 1;
    this.#chain = this.#chain
      .then(() => this.#handle(message))
      .catch((error: unknown) => {
        this.#ctx.logger.error({ err: error, clientId: this.clientId }, 'failed handling a client message');
        this.#sendError({
          code: ErrorCode.InternalError,
          message: 'the server failed handling this message',
          ...withId(message.id),
        });
      })
      .finally(() => {
        this.#queued -= 1;
      });
  }

  async #handle(message: Exclude<ClientMessage, { type: 'ping' }>): Promise<void> {
    if (this.#closed) return;
    switch (message.type) {
      case 'subscribe':
        return this.#subscribe(message);
      case 'unsubscribe':
        return this.#unsubscribe(message);
      case 'resume':
        return this.#resume(message);
      case 'get_resource':
        // Started in order, after the requests before it (so after the subscriptions sent before it),
        // and answered whenever its provider is done: a slow provider delays its own answer only,
        // never the requests after it. It counts as queued until answered.
        this.#queued += 1;
        void answerGetResource(message, this.#ctx.resources, this.principal, {
          answer: (frame, bytes, snapshot) => this.#sendAnswer(frame, bytes, snapshot),
          control: (reply) => (this.#closed ? undefined : this.#sendControl(reply)),
        }).finally(() => {
          this.#queued -= 1;
        });
        return;
    }
  }

  async #authorize(topic: string, filter: Filter, id: MessageId | undefined): Promise<boolean> {
    const allowed = await this.#ctx.authorizeSubscription(this.principal, topic, filter);
    if (!allowed) {
      this.#sendError({
        code: ErrorCode.Forbidden,
        message: `not allowed to subscribe to '${topic}' with this filter`,
        id,
      });
    }
    return allowed;
  }

  async #subscribe(message: SubscribeMessage): Promise<void> {
    const { topic, from } = message.payload;
    const filter = (message.payload.filter ?? {}) as Filter;
    const key = canonicalSubscriptionKey(topic, filter);
    const existing = this.subscriptions.get(key);
    const refusal = existing
      ? undefined
      : this.#overLimits(key, this.subscriptions.size, this.#subscriptionBytes);
    if (refusal) {
      this.#sendError({
        code: ErrorCode.TooManySubscriptions,
        message: `${refusal}; unsubscribe first`,
        id: message.id,
      });
      return;
    }
    if (!(await this.#authorize(topic, filter, message.id)) || this.#closed) return;
    this.#resumedOrSubscribed = true;
    const position = this.#position();
    const subscription = existing ?? this.#addSubscription(key, topic, filter, position.offset);
    if (from === undefined) {
      this.#sendControl({
        type: 'subscribed',
        ...withId(message.id),
        payload: { topic, filter, ...position },
      });
      return;
    }
    // History this connection already received (through this subscription or another) is not repeated.
    const startsAfter = from === 'start' ? 0 : from.offset;
    let answered: Position = position;
    await this.#replay({
      from,
      boundary: position.offset,
      wanted: (entry) =>
        matchesSubscription(entry.message, subscription) &&
        !(subscription.coveredAfter < entry.offset) &&
        !this.#covered(entry, subscription),
      begin: (first) => {
        if (first.epoch !== this.#through.epoch) {
          // The stream has a new epoch this connection has not seen: all of it comes as catch-up.
          this.#enterEpoch(first.epoch, 0, true);
          answered = { epoch: first.epoch, offset: 0 };
          this.#plan.boundary = 0;
        }
        if (from === 'start') return { complete: true };
        return first.complete ? { complete: true } : { complete: false, reason: first.reason };
      },
      answer: (replayed, result) => {
        this.#sendControl({
          type: 'subscribed',
          ...withId(message.id),
          payload: { topic, filter, history: replayResult(result, replayed), ...answered },
        });
      },
      sent: () => {
        if (this.#through.epoch === answered.epoch)
          subscription.coveredAfter = Math.min(subscription.coveredAfter, startsAfter);
      },
    });
  }

  #unsubscribe(message: UnsubscribeMessage): void {
    const { topic, filter } = message.payload;
    let removed = 0;
    const onlyKey = filter === undefined ? undefined : canonicalSubscriptionKey(topic, filter as Filter);
    const until = this.#position().offset;
    for (const [key, subscription] of this.subscriptions) {
      if (subscription.topic !== topic || (onlyKey !== undefined && key !== onlyKey)) continue;
      this.#ctx.index.remove(subscription);
      this.subscriptions.delete(key);
      this.#subscriptionBytes -= Buffer.byteLength(key);
      this.#remember(subscription, until);
      removed += 1;
    }
    this.#sendControl({
      type: 'unsubscribed',
      ...withId(message.id),
      payload: filter === undefined ? { topic, removed } : { topic, filter, removed },
    });
  }

  async #resume(message: ResumeMessage): Promise<void> {
    const { epoch, offset, sequence, subscriptions } = message.payload;
    if (this.#resumedOrSubscribed || this.#outbox.sequence > 0) {
      this.#sendError({
        code: ErrorCode.InvalidMessage,
        message: 'resume must be the first subscription message of a connection',
        id: message.id,
      });
      return;
    }
    // A subscription refused (forbidden, past maxSubscriptions) is answered on its own, with the
    // resume's id and the subscription in `details`; the others are resumed.
    const allowed: typeof subscriptions = [];
    let bytes = 0;
    for (const { topic, filter } of subscriptions) {
      const normalized = (filter ?? {}) as Filter;
      const key = canonicalSubscriptionKey(topic, normalized);
      const refusal = this.#overLimits(key, allowed.length, bytes);
      if (refusal) {
        this.#refuseSubscription(topic, filter, {
          code: ErrorCode.TooManySubscriptions,
          message: `${refusal}: '${topic}' was not resumed`,
          id: message.id,
        });
      } else if (!(await this.#ctx.authorizeSubscription(this.principal, topic, normalized))) {
        this.#refuseSubscription(topic, filter, {
          code: ErrorCode.Forbidden,
          message: `not allowed to subscribe to '${topic}' with this filter: it was not resumed`,
          id: message.id,
        });
      } else {
        allowed.push({ topic, filter });
        bytes += Buffer.byteLength(key);
      }
      if (this.#closed) return;
    }
    this.#resumedOrSubscribed = true;
    const hub = this.#ctx.position();
    // The client had everything up to its position; the history after it is replayed (counted in the
    // answer) up to where this process is, and whatever is newer follows as catch-up.
    this.#through = { epoch, offset };
    const restored: ConnectionSubscription[] = [];
    for (const { topic, filter } of allowed) {
      const key = canonicalSubscriptionKey(topic, filter as Filter);
      if (!this.subscriptions.has(key))
        restored.push(this.#addSubscription(key, topic, (filter ?? {}) as Filter, offset));
    }
    let recovered = true;
    await this.#replay({
      from: { epoch, offset },
      boundary: hub.epoch === epoch ? Math.max(offset, hub.offset) : offset,
      wanted: (entry) => restored.some((s) => matchesSubscription(entry.message, s)),
      begin: (first) => {
        if (first.complete) return { complete: true };
        recovered = false;
        this.#ctx.metrics.gaps.inc({ reason: first.reason ?? 'unknown' });
        if (first.epoch !== epoch) {
          // History lost: the whole new epoch is what the client has not seen.
          // Up to the new epoch's head when this process has not read it yet (it may be switching to it
          // right now): offset 0 would be a position before the epoch begins, one a later resume from
          // it would be answered with a gap for.
          this.#enterEpoch(first.epoch, 0, false);
          this.#plan.boundary = hub.epoch === first.epoch ? hub.offset : first.head;
        } else if (first.reason === GapReason.UnknownPosition) {
          // A position this stream never reached (a client of another stream, a rollback): never a floor.
          // The client goes on live from the head.
          this.#enterEpoch(first.epoch, first.head, false);
          this.#plan.boundary = first.head;
        }
        return { complete: false, reason: first.reason };
      },
      answer: (replayed, result) => {
        // After a gap one sequence number is skipped, so the hole is visible in the numbering too.
        const nextSequence = this.#outbox.resumeAfter(sequence, !recovered);
        this.#sendControl({
          type: 'resumed',
          ...withId(message.id),
          payload: {
            recovered,
            next_sequence: nextSequence,
            ...replayResult(result, replayed),
            epoch: this.#through.epoch,
            offset: this.#plan.boundary,
          },
        });
      },
    });
  }

  /** The position this connection is up to date with: the hub's, or its own when it is ahead or replaying. */
  #position(): Position {
    const through = this.#through;
    if (this.#replaying) return { ...through };
    const hub = this.#ctx.position();
    return hub.epoch === through.epoch && hub.offset > through.offset ? { ...hub } : { ...through };
  }

  #addSubscription(key: string, topic: string, filter: Filter, coveredAfter: number): ConnectionSubscription {
    const subscription: ConnectionSubscription = { owner: this, topic, filter, key, coveredAfter };
    this.subscriptions.set(key, subscription);
    this.#subscriptionBytes += Buffer.byteLength(key);
    this.#ctx.index.add(subscription);
    return subscription;
  }

  /** Why one more subscription (`key`) would pass the connection's limits, if it would. */
  #overLimits(key: string, count: number, bytes: number): string | undefined {
    const { maxSubscriptions, maxSubscriptionBytes } = this.#ctx.options;
    if (count >= maxSubscriptions) return `at most ${maxSubscriptions} subscriptions per connection`;
    if (bytes + Buffer.byteLength(key) > maxSubscriptionBytes)
      return `the subscriptions of a connection may take at most ${maxSubscriptionBytes} bytes of topics and filters`;
    return undefined;
  }

  /** Remembers what a removed subscription delivered, the newest `maxSubscriptions` of them. */
  #remember(subscription: ConnectionSubscription, until: number): void {
    if (until <= subscription.coveredAfter) return;
    const { topic, filter, coveredAfter, key } = subscription;
    const bytes = Buffer.byteLength(key);
    this.#past.push({ topic, filter, coveredAfter, until, bytes });
    this.#pastBytes += bytes;
    const { maxSubscriptions, maxSubscriptionBytes } = this.#ctx.options;
    while (this.#past.length > maxSubscriptions || this.#pastBytes > maxSubscriptionBytes) {
      this.#pastBytes -= (this.#past.shift() as PastSubscription).bytes;
    }
  }

  /** Whether this connection already received `entry` through a subscription other than `except`. */
  #covered(entry: StreamEntry, except: ConnectionSubscription): boolean {
    for (const s of this.subscriptions.values()) {
      if (s !== except && s.coveredAfter < entry.offset && matchesSubscription(entry.message, s)) return true;
    }
    for (const p of this.#past) {
      if (p.coveredAfter < entry.offset && entry.offset <= p.until && matchesSubscription(entry.message, p))
        return true;
    }
    return false;
  }

  /** Moves the connection to another epoch at `offset`; with `gap`, its numbering gets a hole. */
  #enterEpoch(epoch: string, offset: number, gap: boolean): void {
    if (gap && this.subscriptions.size > 0) {
      this.#ctx.metrics.gaps.inc({ reason: GapReason.EpochChanged });
      this.#outbox.pushGap();
    }
    const sameEpoch = this.#through.epoch === epoch;
    this.#through = { epoch, offset };
    this.#throughPublishedAt = undefined;
    for (const subscription of this.subscriptions.values()) {
      subscription.coveredAfter = sameEpoch ? Math.min(subscription.coveredAfter, offset) : offset;
    }
    if (!sameEpoch) {
      this.#past = [];
      this.#pastBytes = 0;
    }
  }

  /** The plan of the replay running now (set for the length of {@link Connection.#replay}). */
  #plan!: ReplayPlan;

  /**
   * Runs one replay, with live delivery to this connection suspended: counts
   * the history to send (so the answer can say how many follow), answers,
   * sends that history, then catches up with the stream page by page until
   * it reaches this process's position, and only then takes live entries
   * again. Pages are bounded ({@link REPLAY_PAGE_SIZE}), paced by the
   * outbound buffer and the `replayMessagesPerSecond` budget, and one turn of
   * the event loop handles at most one, less once the replays' slice of the
   * turn is spent ({@link replaySliceSpent}): a long history never stalls the
   * server, and nothing is held but the current page.
   */
  async #replay(plan: ReplayPlan): Promise<void> {
    this.#replaying = true;
    this.#plan = plan;
    try {
      const first = await this.#read(plan.from);
      if (this.#closed || !first) return;
      const result = plan.begin(first);
      const epoch = this.#through.epoch;
      const history = (read: HistoryRead) => read.epoch === epoch;
      // Pass 1: count what will be sent.
      let replayed = 0;
      let read: HistoryRead | undefined = first;
      while (read && history(read)) {
        let last = 0;
        for (const entry of read.entries) {
          last = entry.offset;
          if (entry.offset > plan.boundary) break;
          if (plan.wanted(entry)) replayed += 1;
        }
        if (!this.#more(read, last, plan.boundary)) break;
        read = await this.#read({ epoch, offset: last });
        if (this.#closed) return;
      }
      plan.answer(replayed, result);
      // Pass 2: send it, reading again from the start (nothing but the current page is held).
      let sent = 0;
      read = first;
      while (read && sent < replayed) {
        if (read.epoch !== this.#through.epoch) break;
        let last = 0;
        for (const entry of read.entries) {
          last = entry.offset;
          if (entry.offset > plan.boundary || sent >= replayed) break;
          if (!plan.wanted(entry)) continue;
          await this.#paced();
          if (this.#closed) return;
          this.#send(read.epoch, entry);
          sent += 1;
          if (this.#sliceSpent()) await replayTurn();
          if (this.#closed) return;
        }
        if (!this.#more(read, last, plan.boundary)) break;
        read = await this.#read({ epoch: read.epoch, offset: last });
        if (this.#closed) return;
        // History trimmed under the replay: what is left of it is not sent as if nothing was missing.
        if (read && !read.complete) break;
      }
      if (sent < replayed) {
        // Fewer than announced (trimmed or compacted meanwhile): the replay ends here, at a hole in the
        // numbering, so that a client counting the announced messages knows it is over.
        this.#outbox.pushGap();
        this.#ctx.metrics.gaps.inc({ reason: GapReason.HistoryTruncated });
      }
      this.#ctx.metrics.replayed.inc(sent);
      plan.sent?.();
      if (this.#through.offset < plan.boundary && this.#through.epoch === epoch)
        this.#through.offset = plan.boundary;
      await this.#catchUp();
    } finally {
      this.#replaying = false;
    }
  }

  /** Whether a page was full and stopped before `through`: there is more to read. */
  #more(read: HistoryRead, last: number, through: number): boolean {
    return read.entries.length >= REPLAY_PAGE_SIZE && last < through && last < read.head;
  }

  /**
   * Sends the entries after `#through` that any subscription matches, page by
   * page, until the connection is where this process's live fan-out is; a new
   * epoch or a hole in history on the way is marked as a gap.
   */
  async #catchUp(): Promise<void> {
    for (;;) {
      const hub = this.#ctx.position();
      const through = this.#through;
      if (hub.epoch === through.epoch && through.offset >= hub.offset) return;
      const read = await this.#read({ epoch: through.epoch, offset: through.offset });
      if (this.#closed || !read) return;
      if (read.epoch !== through.epoch) {
        this.#enterEpoch(read.epoch, 0, true);
        continue;
      }
      if (!read.complete) {
        // Trimmed under the replay, or the stream went back behind this connection: mark the hole.
        this.#outbox.pushGap();
        this.#ctx.metrics.gaps.inc({ reason: read.reason ?? 'unknown' });
        if (read.reason === GapReason.UnknownPosition) {
          this.#enterEpoch(read.epoch, read.head, false);
          continue;
        }
      }
      if (read.entries.length === 0) return; // this process has not read as far as the broker, or is behind
      for (const entry of read.entries) {
        if (entry.offset <= this.#through.offset) continue;
        if (this.#matchesAny(entry)) {
          await this.#paced();
          if (this.#closed) return;
          this.#send(read.epoch, entry);
        }
        this.#through.offset = entry.offset;
        this.#throughPublishedAt = entry.publishedAt;
        if (this.#sliceSpent()) await replayTurn();
        if (this.#closed) return;
      }
      // Ahead of this process (it reads the shared stream a little later): live entries up to here are skipped.
      if (hub.epoch !== read.epoch && read.entries.length < REPLAY_PAGE_SIZE) return;
    }
  }

  /** Entries this connection's replay handled since it last looked at the clock. */
  #sinceSliceCheck = 0;

  /**
   * Whether the replay should wait for its next turn before the next entry:
   * every {@link REPLAY_SLICE_CHECK_EVERY} entries it looks whether the
   * replays' slice of this turn is spent, so that live fan-out is not held
   * behind a whole page.
   */
  #sliceSpent(): boolean {
    if (++this.#sinceSliceCheck < REPLAY_SLICE_CHECK_EVERY) return false;
    this.#sinceSliceCheck = 0;
    return replaySliceSpent();
  }

  /**
   * Waits while the outbound buffer is over {@link REPLAY_BUFFERED_BYTES} (or
   * the soft limit, when lower). A replay woken by
   * its socket draining goes on in its next turn ({@link replayTurn}), not
   * where the drain woke it: replays send only in their turns, after the
   * frames of live fan-out due by then are written.
   */
  async #paced(): Promise<void> {
    const limit = Math.min(this.#ctx.options.softBufferedBytes, REPLAY_BUFFERED_BYTES);
    if (this.#outbox.bufferedBytes < limit) return;
    await this.#outbox.drained(limit);
    if (this.#closed) return;
    this.#sinceSliceCheck = 0;
    await replayTurn();
  }

  #matchesAny(entry: StreamEntry): boolean {
    for (const subscription of this.subscriptions.values()) {
      if (matchesSubscription(entry.message, subscription)) return true;
    }
    return false;
  }

  #send(epoch: string, entry: StreamEntry): void {
    this.#outbox.pushData(prepareEntry(epoch, entry));
    if (entry.offset > this.#through.offset) {
      this.#through.offset = entry.offset;
      this.#throughPublishedAt = entry.publishedAt;
    }
  }

  /**
   * One page of history, once the replay budget and the event loop allow: a
   * few pages per turn of the loop for all replays together
   * ({@link REPLAY_PAGES_PER_TURN}), so live fan-out is served in between
   * however many replays run. A failed read ends the replay with a gap.
   */
  async #read(from: ReplayFrom): Promise<HistoryRead | undefined> {
    for (let wait = this.#replayBucket.takeOrWait(); wait > 0; wait = this.#replayBucket.takeOrWait()) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.#closed) return undefined;
    }
    await replayTurn();
    if (this.#closed) return undefined;
    try {
      return await this.#ctx.broker.read(from, { limit: REPLAY_PAGE_SIZE });
    } catch (error) {
      this.#ctx.logger.warn({ err: error, clientId: this.clientId }, 'history read failed');
      const { epoch, offset } = this.#ctx.position();
      return { epoch, head: offset, entries: [], complete: false, reason: GapReason.BrokerUnavailable };
    }
  }

  /** Refuses one subscription of a request, naming it in `details` so that the client can tell its owner. */
  #refuseSubscription(topic: string, filter: unknown, error: ProtocolErrorInfo): void {
    this.#ctx.metrics.errors.inc({ code: error.code });
    this.#sendControl({
      type: 'error',
      ...withId(error.id),
      payload: {
        code: error.code,
        message: error.message,
        details: { topic, ...(filter === undefined ? {} : { filter }) },
      },
    });
  }

  /**
   * Queues a `resource` answer unless it does not fit the connection's budget
   * for answers (`maxBufferedBytes`, with the answers not yet flushed): then
   * says why, for the `resource_unavailable` sent instead. Answers never make
   * the connection a slow consumer: a client that asks again after a 1013
   * would only be closed again.
   */
  #sendAnswer(frame: string, bytes: number, snapshot: ResourceSnapshot): string | undefined {
    if (this.#closed) return undefined;
    const limit = this.#ctx.options.maxBufferedBytes;
    const pending = this.#outbox.answerBytes;
    if (this.#outbox.pushAnswer(frame, bytes)) return undefined;
    this.#ctx.logger.warn(
      { clientId: this.clientId, kind: snapshot.kind, id: snapshot.resource_id, bytes, pending, limit },
      'a resource answer does not fit the connection buffer; answered resource_unavailable',
    );
    return bytes > limit
      ? `the answer is ${bytes} bytes, more than this connection buffers (${limit} bytes)`
      : `the answer is ${bytes} bytes and ${pending} bytes of earlier answers are not sent yet: more than this connection buffers (${limit} bytes); ask again once they have arrived`;
  }

  #sendControl(message: object): void {
    this.#outbox.pushControl(JSON.stringify(message));
  }

  #sendError(error: ProtocolErrorInfo): void {
    this.#ctx.metrics.errors.inc({ code: error.code });
    const payload: Record<string, unknown> = { code: error.code, message: error.message };
    if (error.issues) payload.details = error.issues;
    this.#sendControl({ type: 'error', ...withId(error.id), payload });
  }
}

/** The period over which `rateLimit.closeAfterRefused` refusals close a connection. */
const REFUSALS_WINDOW_S = 60;

function withId(id: MessageId | undefined): { id?: MessageId } {
  return id === undefined ? {} : { id };
}

function replayResult(result: { complete: boolean; reason?: GapReason }, replayed: number) {
  return result.complete
    ? { replayed, complete: true }
    : { replayed, complete: false, reason: result.reason };
}
