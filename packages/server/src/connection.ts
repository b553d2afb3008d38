import {
  type ClientMessage,
  CloseCode,
  canonicalSubscriptionKey,
  type DataMessage,
  ErrorCode,
  type Filter,
  GapReason,
  type MessageId,
  matchesSubscription,
  type ProtocolErrorInfo,
  parseClientMessage,
  type ReplayFrom,
  type ResumeMessage,
  type SubscribeMessage,
  type UnsubscribeMessage,
} from '@atp/ws-protocol';
import type { WebSocket } from 'ws';
import type { HistoryRead, StreamEntry } from './broker.js';
import { TokenBucket } from './limits.js';
import { Outbox, type OutboxOwner, type PreparedEntry, prepareEntry } from './outbound.js';
import type { IndexedSubscription } from './subscription-index.js';
import type { ClientInfo, Principal } from './types.js';
import type { HubContext } from './hub-context.js';

interface ConnectionSubscription extends IndexedSubscription<Connection> {
  readonly key: string;
  /** Offset of the stream from which this subscription receives live messages. */
  readonly activeAfter: number;
}

/** One accepted WebSocket: its subscriptions, sequence, outbound queue and replays. */
export class Connection implements OutboxOwner {
  readonly connectedAt = Date.now();
  lastActivity = Date.now();
  /** Heartbeat: set when a pong arrives, cleared when a ping is sent. */
  alive = true;
  readonly subscriptions = new Map<string, ConnectionSubscription>();
  readonly #ctx: HubContext;
  readonly #outbox: Outbox;
  readonly #bucket: TokenBucket;
  #lastEntry: PreparedEntry | undefined;
  #refusedInRow = 0;
  /**
   * Refusals still tolerated: `closeAfterRefused` within about a minute. It
   * refills, so a client that overran the rate now and then is not closed
   * days later for refusals long past, while a flood spends it in a moment.
   */
  readonly #refusals: TokenBucket;
  #chain: Promise<void> = Promise.resolve();
  /** While a replay runs: live entries wait here, and pongs report this position. */
  #paused:
    | { queue: Array<PreparedEntry | 'gap'>; bytes: number; position: { epoch: string; offset: number } }
    | undefined;
  /**
   * The position a resuming client already had. This process may lag behind it
   * (it reads the shared stream a little later): live entries up to it were
   * delivered on the client's previous connection and are not sent again.
   */
  #floor: { epoch: string; offset: number } | undefined;
  #resumedOrSubscribed = false;
  #closed = false;
  #disposed = false;

  constructor(
    ctx: HubContext,
    readonly ws: WebSocket,
    readonly clientId: string,
    readonly principal: Principal | null,
    readonly ip: string,
  ) {
    this.#ctx = ctx;
    const { options } = ctx;
    const { messagesPerSecond, burst, closeAfterRefused } = options.rateLimit;
    this.#bucket = new TokenBucket(messagesPerSecond, burst);
    this.#refusals = new TokenBucket(closeAfterRefused / REFUSALS_WINDOW_S, closeAfterRefused - 1);
    this.#outbox = new Outbox(
      ws,
      this,
      ctx.metrics.outbound,
      options.softBufferedBytes,
      options.maxBufferedBytes,
    );
    ws.on('message', (data, isBinary) => this.#onFrame(data as Buffer, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
  }

  /** Sends the `connected` greeting. */
  greet(): void {
    const { epoch, offset } = this.#ctx.position();
    this.#sendControl({
      type: 'connected',
      payload: {
        client_id: this.clientId,
        protocol: 1,
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

  /** Live fan-out entry point: at most once per entry, queued while a replay runs. */
  deliver(entry: PreparedEntry): void {
    if (entry === this.#lastEntry || this.#closed) return;
    this.#lastEntry = entry;
    const floor = this.#floor;
    if (floor && entry.offset <= floor.offset && entry.epoch === floor.epoch) return;
    const paused = this.#paused;
    if (paused) {
      paused.queue.push(entry);
      paused.bytes += entry.prefix.length;
      if (paused.bytes > this.#ctx.options.maxBufferedBytes) {
        this.#ctx.metrics.slowConsumerCloses.inc();
        this.close(CloseCode.TryAgainLater, 'slow consumer: outbound buffer overflowed during replay');
      }
      return;
    }
    this.#outbox.pushData(entry);
  }

  /**
   * The stream's epoch changed under live delivery (the shared broker lost its
   * history): entries not yet read from the old stream are gone, so the
   * numbering gets a hole the client reports as a gap instead of missing them silently.
   */
  markGap(): void {
    if (this.#closed || this.subscriptions.size === 0) return;
    if (this.#paused) this.#paused.queue.push('gap');
    else this.#outbox.pushGap();
  }

  info(): ClientInfo {
    const topics = new Set<string>();
    for (const subscription of this.subscriptions.values()) topics.add(subscription.topic);
    return {
      client_id: this.clientId,
      connected_at: new Date(this.connectedAt).toISOString(),
      subscriptions: [...topics],
      last_activity: new Date(this.lastActivity).toISOString(),
      ip: this.ip,
      server_id: this.#ctx.serverId,
    };
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbox.clear();
    this.#paused = undefined;
    this.#ctx.release(this);
    this.ws.close(code, reason);
    // A peer that does not complete the closing handshake is cut off.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** True once {@link Connection.dispose} ran. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees everything the connection holds (called once the socket is closed). */
  dispose(): void {
    this.#disposed = true;
    this.#closed = true;
    this.#outbox.clear();
    this.#paused = undefined;
    for (const subscription of this.subscriptions.values()) this.#ctx.index.remove(subscription);
    this.subscriptions.clear();
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    this.lastActivity = Date.now();
    this.#ctx.metrics.messagesIn.inc();
    if (!this.#bucket.take()) {
      if (!this.#refusals.take()) {
        this.close(CloseCode.PolicyViolation, 'rate limit exceeded repeatedly');
        return;
      }
      // One error per run of refusals: answering every flooded frame would amplify the flood.
      if (this.#refusedInRow++ === 0) {
        const { messagesPerSecond, burst } = this.#ctx.options.rateLimit;
        this.#sendError({
          code: ErrorCode.RateLimited,
          message: `rate limit exceeded (${messagesPerSecond} messages/s, bursts of ${burst}); messages are being dropped`,
        });
      }
      return;
    }
    this.#refusedInRow = 0;
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
    if (message.type === 'ping') {
      // Answered at once, even while a replay runs, with the position the client is safe to resume from.
      const { epoch, offset } = this.#paused?.position ?? this.#position();
      this.#sendControl({ type: 'pong', ...withId(message.id), payload: { epoch, offset } });
      return;
    }
    // Subscriptions and resumes run one after another, in arrival order, even when hooks or reads are async.
    this.#chain = this.#chain
      .then(() => this.#handle(message))
      .catch((error: unknown) => {
        this.#ctx.logger.error({ err: error, clientId: this.clientId }, 'failed handling a client message');
        this.#sendError({
          code: ErrorCode.InternalError,
          message: 'the server failed handling this message',
          ...withId(message.id),
        });
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
    if (!existing && this.subscriptions.size >= this.#ctx.options.maxSubscriptions) {
      this.#sendError({
        code: ErrorCode.TooManySubscriptions,
        message: `at most ${this.#ctx.options.maxSubscriptions} subscriptions per connection; unsubscribe first`,
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
    await this.#replay(from, position, (history) => {
      // History this connection already got live through another subscription is not repeated.
      const entries = this.#matching(
        history,
        position.offset,
        (m) => matchesSubscription(m, subscription),
        subscription,
      );
      this.#sendControl({
        type: 'subscribed',
        ...withId(message.id),
        payload: { topic, filter, history: replayResult(history, entries.length), ...position },
      });
      return entries;
    });
  }

  #unsubscribe(message: UnsubscribeMessage): void {
    const { topic, filter } = message.payload;
    let removed = 0;
    const onlyKey = filter === undefined ? undefined : canonicalSubscriptionKey(topic, filter as Filter);
    for (const [key, subscription] of this.subscriptions) {
      if (subscription.topic !== topic || (onlyKey !== undefined && key !== onlyKey)) continue;
      this.#ctx.index.remove(subscription);
      this.subscriptions.delete(key);
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
    if (subscriptions.length > this.#ctx.options.maxSubscriptions) {
      this.#sendError({
        code: ErrorCode.TooManySubscriptions,
        message: `at most ${this.#ctx.options.maxSubscriptions} subscriptions per connection`,
        id: message.id,
      });
      return;
    }
    for (const { topic, filter } of subscriptions) {
      if (!(await this.#authorize(topic, (filter ?? {}) as Filter, message.id)) || this.#closed) return;
    }
    this.#resumedOrSubscribed = true;
    if (epoch === this.#ctx.position().epoch) this.#floor = { epoch, offset };
    const position = this.#position();
    // The client had everything up to its offset; after an epoch change it has nothing of the new stream.
    const activeAfter = epoch === position.epoch ? offset : 0;
    const restored: ConnectionSubscription[] = [];
    for (const { topic, filter } of subscriptions) {
      const key = canonicalSubscriptionKey(topic, filter as Filter);
      if (!this.subscriptions.has(key))
        restored.push(this.#addSubscription(key, topic, (filter ?? {}) as Filter, activeAfter));
    }
    await this.#replay({ epoch, offset }, { epoch, offset }, (history) => {
      const entries = this.#matching(history, position.offset, (m) =>
        restored.some((s) => matchesSubscription(m, s)),
      );
      const recovered = history.complete;
      if (!recovered) this.#ctx.metrics.gaps.inc({ reason: history.reason ?? 'unknown' });
      // After a gap one sequence number is skipped, so the hole is visible in the numbering too.
      this.#outbox.sequence = recovered ? sequence : sequence + 1;
      this.#sendControl({
        type: 'resumed',
        ...withId(message.id),
        payload: {
          recovered,
          next_sequence: this.#outbox.sequence + 1,
          ...replayResult(history, entries.length),
          epoch: position.epoch,
          offset: position.offset,
        },
      });
      return entries;
    });
  }

  /** The position this connection is up to date with: the hub's, or the resumed client's when the hub lags behind it. */
  #position(): { epoch: string; offset: number } {
    const hub = this.#ctx.position();
    const floor = this.#floor;
    return floor && floor.epoch === hub.epoch && floor.offset > hub.offset ? floor : hub;
  }

  #addSubscription(key: string, topic: string, filter: Filter, activeAfter: number): ConnectionSubscription {
    const subscription: ConnectionSubscription = { owner: this, topic, filter, key, activeAfter };
    this.subscriptions.set(key, subscription);
    this.#ctx.index.add(subscription);
    return subscription;
  }

  /**
   * History entries up to `through` that `wanted` accepts, minus those this
   * connection already received live through one of its other subscriptions.
   */
  #matching(
    history: HistoryRead,
    through: number,
    wanted: (message: DataMessage) => boolean,
    except?: ConnectionSubscription,
  ): StreamEntry[] {
    const others = [...this.subscriptions.values()].filter((s) => s !== except);
    const out: StreamEntry[] = [];
    for (const entry of history.entries) {
      if (entry.offset > through) break;
      if (!wanted(entry.message)) continue;
      const alreadySent =
        except !== undefined &&
        others.some((s) => s.activeAfter < entry.offset && matchesSubscription(entry.message, s));
      if (!alreadySent) out.push(entry);
    }
    return out;
  }

  /**
   * Reads history from `from`, lets `select` pick (and acknowledge) what to
   * send, sends it paced by the outbound buffer, then the live entries that
   * arrived meanwhile: so the client sees history before live, in order, once.
   * Entries are framed one by one as the buffer drains, so a replay holds at
   * most its outbound buffer, not a copy of the history.
   */
  async #replay(
    from: ReplayFrom,
    safePosition: { epoch: string; offset: number },
    select: (history: HistoryRead) => readonly StreamEntry[],
  ): Promise<void> {
    this.#paused = { queue: [], bytes: 0, position: safePosition };
    let history: HistoryRead;
    try {
      history = await this.#ctx.broker.read(from);
    } catch (error) {
      this.#ctx.logger.warn({ err: error, clientId: this.clientId }, 'history read failed');
      const { epoch, offset } = this.#ctx.position();
      history = { epoch, head: offset, entries: [], complete: false, reason: GapReason.BrokerUnavailable };
    }
    if (this.#closed) return;
    const entries = select(history);
    this.#ctx.metrics.replayed.inc(entries.length);
    for (const entry of entries) {
      if (this.#outbox.bufferedBytes >= this.#ctx.options.softBufferedBytes) await this.#outbox.drained();
      if (this.#closed) return;
      this.#outbox.pushData(prepareEntry(history.epoch, entry));
    }
    const paused = this.#paused;
    this.#paused = undefined;
    for (const item of paused?.queue ?? []) {
      if (item === 'gap') this.#outbox.pushGap();
      else this.#outbox.pushData(item);
    }
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

function replayResult(history: HistoryRead, replayed: number) {
  return history.complete
    ? { replayed, complete: true }
    : { replayed, complete: false, reason: history.reason };
}
