import {
  canonicalSubscriptionKey,
  type DataMessage,
  type DeliveredDataMessage,
  type Filter,
  MAX_RESOURCE_ID_LENGTH,
  matchesSubscription,
  RESOURCE_KIND_PATTERN,
  type ResourceSnapshot,
} from '@atp/ws-protocol';
import type { ATPWebSocket } from './client.js';
import { ATPWebSocketError } from './errors.js';
import { ResourceRequests } from './resource-requests.js';
import type { MessageMeta, SequenceGapEvent, Subscription } from './events.js';

/**
 * Where a resource is: fetching its first snapshot (`loading`), applying live
 * messages after it (`live`), fetching it again after a gap while keeping the
 * last data (`resyncing`), or unable to get it (`error`, retried).
 */
export type ResourceStatus = 'loading' | 'live' | 'resyncing' | 'error';

/** What a resource holds now: one object per change, so it can be compared by identity. */
export interface ResourceView<T> {
  readonly data: T | undefined;
  readonly status: ResourceStatus;
  readonly error: ATPWebSocketError | undefined;
}

/** Why a resource fetches its snapshot. */
export type ResyncReason =
  | 'initial'
  | 'gap'
  | 'epoch_changed'
  | 'version_gap'
  /** The reducer threw on a message (the `error` event has it). */
  | 'reducer_failed'
  /** `matches` threw on a message (the `error` event has it). */
  | 'matches_failed'
  /** The client connected in a new session (after `disconnect()`): nothing was resumed. */
  | 'new_session'
  | 'retry'
  | 'refetch';

/** Applies one live message to the resource's data; returns the new data (it may mutate and return the same). */
export type ResourceReducer<T> = (data: T, message: DeliveredDataMessage, meta: MessageMeta) => T;

/**
 * Fetches a snapshot; the default sends `get_resource` on the client's connection. `signal` aborts
 * when the handle closes: the fetch may stop then (its answer is ignored either way).
 */
export type ResourceFetcher = (
  kind: string,
  id: string,
  options: { readonly signal: AbortSignal },
) => Promise<ResourceSnapshot>;

/** Options of {@link openResource}. */
export interface ResourceOptions<T> {
  /** The subscriptions that carry the resource's changes (held while the handle is open). */
  readonly subscriptions: ReadonlyArray<{ readonly topic: string; readonly filter?: Filter }>;
  /** Applies a message of the resource after the snapshot, in stream order. */
  readonly reduce: ResourceReducer<T>;
  /** Which delivered messages belong to the resource. @default those matching one of `subscriptions` */
  readonly matches?: (message: DeliveredDataMessage) => boolean;
  /**
   * The snapshot's data as the reducer works on it (e.g. a copy or a different
   * shape). @default the data as received
   */
  readonly fromSnapshot?: (data: unknown) => T;
  /** @default `get_resource` on the client's own connection (ordered after the subscriptions) */
  readonly fetch?: ResourceFetcher;
  /** Delay before retrying a failed fetch, by attempt. @default 500 ms doubling to 15 s */
  readonly retryDelay?: (attempt: number) => number;
  /**
   * A fetch not settled after this many ms is abandoned: its signal aborts, the status is `error`
   * (`fetch_timeout`) and it is retried after `retryDelay`. @default 30_000
   */
  readonly fetchTimeout?: number;
}

/** Default of {@link ResourceOptions.fetchTimeout}. */
const FETCH_TIMEOUT_MS = 30_000;

/** Throws a TypeError naming what is wrong with the arguments of {@link openResource}. */
function checkArguments(kind: unknown, id: unknown, options: ResourceOptions<unknown>): void {
  const fail = (what: string) => {
    throw new TypeError(`openResource: ${what}`);
  };
  if (typeof kind !== 'string' || !RESOURCE_KIND_PATTERN.test(kind))
    fail(`kind must be 1-64 letters, digits, '_', '.' or '-'; got ${JSON.stringify(kind)}`);
  const text = typeof id === 'number' ? String(id) : id;
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_RESOURCE_ID_LENGTH)
    fail(`id must be a number or a string of 1 to ${MAX_RESOURCE_ID_LENGTH} characters`);
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  if (!Array.isArray(options.subscriptions))
    fail('options.subscriptions must be an array of { topic, filter? }');
  options.subscriptions.forEach((subscription, index) => {
    if (typeof subscription?.topic !== 'string')
      fail(`options.subscriptions[${index}].topic must be a string`);
  });
  if (typeof options.reduce !== 'function')
    fail('options.reduce must be a function (data, message, meta) => data');
  for (const name of ['matches', 'fromSnapshot', 'fetch', 'retryDelay'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'function')
      fail(`options.${name} must be a function; got ${typeof value}`);
  }
  const timeout = options.fetchTimeout;
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout <= 2 ** 31 - 1))
    fail(`options.fetchTimeout must be a number of ms above 0; got ${String(timeout)}`);
}

/** Why `snapshot` cannot be the snapshot of `kind`/`id`, or undefined when it can. */
function unusable(snapshot: unknown, kind: string, id: string): string | undefined {
  if (typeof snapshot !== 'object' || snapshot === null)
    return `the answer is not an object (${String(snapshot)})`;
  const { kind: its, resource_id, epoch, offset, version, data } = snapshot as Partial<ResourceSnapshot>;
  if (its !== kind || String(resource_id) !== id)
    return `the answer is of ${String(its)} '${String(resource_id)}'`;
  if (typeof epoch !== 'string' || epoch === '') return 'the answer has no epoch';
  if (!Number.isSafeInteger(offset) || (offset as number) < 0)
    return `its offset ${String(offset)} is not a position`;
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 0))
    return `its version ${String(version)} is not a count`;
  if (data === undefined) return 'the answer has no data';
  return undefined;
}

/** Events of a {@link ResourceHandle}. */
export interface ResourceEvents<T> {
  /** The view changed (data, status or error). */
  change: (view: ResourceView<T>) => void;
  /** A snapshot fetch starts, and why. */
  resync: (reason: ResyncReason) => void;
  /**
   * A failure the handle recovers from by itself, as its status says: `fromSnapshot` threw or a
   * snapshot had no data (`snapshot_failed`, retried with backoff), `reduce` or `matches` threw
   * (`reducer_failed`, refetched), a listener of the handle threw (`listener_failed`, the others
   * still ran). Without a listener, it goes to `console.error`.
   */
  error: (error: ATPWebSocketError) => void;
}

type Delivery = { readonly message: DeliveredDataMessage; readonly meta: MessageMeta };

/**
 * What the state machine asks its owner to do after a step: fetch again now (`resync`,
 * `version_gap`, `reducer_failed`: the reducer threw, `error` says why), or after a delay
 * (`behind`: the snapshot was older than needed; `snapshot_failed`: it had no data or
 * `fromSnapshot` threw, the status is `error`).
 */
export type SyncStep = 'resync' | 'version_gap' | 'behind' | 'reducer_failed' | 'snapshot_failed' | undefined;

/**
 * The ordering rules of a resource, without I/O: a snapshot at a stream
 * position, then only the resource's messages after that position, in order,
 * each once. Messages that arrive while a snapshot is fetched are kept and
 * applied after it. Used by {@link ResourceHandle}; exported for tests.
 */
export class ResourceSync<T> {
  data: T | undefined;
  status: ResourceStatus = 'loading';
  error: ATPWebSocketError | undefined;
  epoch: string | undefined;
  offset = 0;
  version: number | undefined;
  /** How many messages the reducer applied (it grows when one is applied without throwing). */
  applied = 0;
  /** The fetch whose answer counts; a newer one supersedes it. */
  #token = 0;
  #buffer: Delivery[] | undefined;
  /**
   * The oldest position a snapshot may have: where the newest of the resource's subscriptions
   * took effect, where the connection was when the handle began to listen, or the newest message
   * of the resource that arrived and was neither kept nor applied. A snapshot older than it would
   * miss messages the handle will never see again.
   */
  #floor: { epoch: string; offset: number } | undefined;
  /** The `changes` of the delta the held version came from (undefined: it came from a snapshot). */
  #versionDelta: string | undefined;
  /** The epoch the connection is in, as its latest message or subscription said. */
  #current: string | undefined;

  constructor(
    readonly kind: string,
    readonly id: string,
    readonly reduce: ResourceReducer<T>,
    readonly fromSnapshot: (data: unknown) => T = (data) => data as T,
  ) {}

  /** A fetch starts: live messages are kept until its answer. Returns its token. */
  begin(): number {
    this.#buffer ??= [];
    this.status = this.data === undefined ? 'loading' : 'resyncing';
    return ++this.#token;
  }

  get fetching(): boolean {
    return this.#buffer !== undefined;
  }

  /**
   * One of the resource's subscriptions took effect at `position` (its `subscribed`): the messages
   * before it were not received, so a snapshot older than it would miss them.
   */
  subscribedAt(position: { epoch: string; offset: number }): void {
    this.#current = position.epoch;
    this.seen(position);
  }

  /**
   * The messages of the resource up to `position` will not reach this sync (they were delivered
   * before it listened, or passed while it could not keep them): a snapshot must hold them.
   */
  seen(position: { epoch: string; offset: number }): void {
    const floor = this.#floor;
    if (floor?.epoch !== position.epoch || floor.offset < position.offset)
      this.#floor = { epoch: position.epoch, offset: position.offset };
  }

  /** The connection is in `epoch` (a message or a subscription of any topic came from it). */
  observe(epoch: string): void {
    this.#current = epoch;
  }

  /**
   * The snapshot of fetch `token` arrived; returns whether another fetch is needed. One that is
   * not a snapshot of this resource at a stream position (checked, as a custom fetch may answer
   * anything) is `snapshot_failed`.
   */
  snapshot(token: number, snapshot: ResourceSnapshot): SyncStep {
    if (token !== this.#token || !this.#buffer) return undefined;
    const problem = unusable(snapshot, this.kind, this.id);
    if (problem) return this.#unusable(new TypeError(problem));
    // Older than the data held (a provider whose store lags the stream): the messages in between
    // were applied and are not kept, so it would lose them. Keep what arrives; fetch again.
    if (this.data !== undefined && snapshot.epoch === this.epoch && snapshot.offset < this.offset)
      return 'behind';
    // Older than where a subscription of the resource took effect: the messages in between were
    // never received. Keep what arrives; fetch again (the provider catches up).
    if (snapshot.epoch === this.#floor?.epoch && snapshot.offset < this.#floor.offset) return 'behind';
    // Of another epoch than the connection's (a process that has not seen the stream start over, or
    // one ahead of this connection): the live messages would not follow it. Fetch again.
    if (this.#current !== undefined && snapshot.epoch !== this.#current) return 'behind';
    const kept = this.#buffer;
    let data: T;
    try {
      data = this.fromSnapshot(snapshot.data);
    } catch (cause) {
      return this.#unusable(cause);
    }
    this.#buffer = undefined;
    this.data = data;
    this.epoch = snapshot.epoch;
    this.offset = snapshot.offset;
    this.version = snapshot.version;
    this.#versionDelta = undefined;
    this.status = 'live';
    this.error = undefined;
    for (const [index, delivery] of kept.entries()) {
      // A kept message of another epoch is from before the snapshot's epoch began; one after it
      // comes with a gap (the server marks every epoch change), which fetches again.
      if (delivery.meta.epoch !== this.epoch) continue;
      const step = this.message(delivery.message, delivery.meta);
      if (step) {
        // The kept messages after it are dropped: the next snapshot must hold them.
        const last = kept[kept.length - 1];
        if (last && index < kept.length - 1) this.seen(last.meta);
        return step;
      }
    }
    return undefined;
  }

  /** Nothing of the snapshot is taken: the data held stays, and a fetch after a delay takes it all again. */
  #unusable(cause: unknown): SyncStep {
    this.#buffer = undefined;
    this.status = 'error';
    this.error = new ATPWebSocketError(
      'snapshot_failed',
      `the snapshot of ${this.kind} '${this.id}' could not be used: ${String(cause)}`,
      { cause },
    );
    return 'snapshot_failed';
  }

  /** Fetch `token` failed. */
  failed(token: number, error: ATPWebSocketError): void {
    if (token !== this.#token) return;
    this.#buffer = undefined;
    this.status = 'error';
    this.error = error;
  }

  /** The resource cannot be kept (a subscription it needs was refused): any fetch in flight no longer counts. */
  fail(error: ATPWebSocketError): number {
    this.#buffer = undefined;
    this.status = 'error';
    this.error = error;
    return ++this.#token;
  }

  /** A live message of the resource; returns what the owner must do. */
  message(message: DeliveredDataMessage, meta: MessageMeta): SyncStep {
    if (this.#buffer) {
      this.#buffer.push({ message, meta });
      return undefined;
    }
    if (this.data === undefined || this.status === 'error') {
      // Not applied and not kept: the snapshot that ends the error must hold it.
      this.seen(meta);
      return undefined;
    }
    if (meta.epoch !== this.epoch) {
      this.seen(meta);
      return 'resync';
    }
    if (meta.offset <= this.offset) return undefined;
    let version = this.version;
    let versionDelta = this.#versionDelta;
    if (message.type === 'delta_update' && this.#isMine(message)) {
      const { sequence, base_sequence: base = sequence - 1, changes } = message.payload;
      versionDelta = JSON.stringify(changes);
      if (this.version !== undefined) {
        // The very delta the version came from, published again: taken once. Another delta claiming
        // that version, or one when the version came from a snapshot (its delta is unknown), is a
        // conflict, as is a version that goes back (the resource made again): fetched again.
        if (sequence === this.version && base === this.version - 1 && versionDelta === this.#versionDelta) {
          this.offset = meta.offset;
          return undefined;
        }
        if (base !== this.version || sequence === this.version) {
          this.seen(meta);
          return 'version_gap';
        }
      }
      version = sequence;
    }
    let data: T;
    try {
      data = this.reduce(this.data, message, meta);
    } catch (cause) {
      // Neither the position nor the version moves: the snapshot fetched next holds this message.
      this.error = new ATPWebSocketError(
        'reducer_failed',
        `the reducer of ${this.kind} '${this.id}' threw on a ${message.type}: ${String(cause)}`,
        { cause },
      );
      this.seen(meta);
      return 'reducer_failed';
    }
    this.data = data;
    this.version = version;
    this.#versionDelta = versionDelta;
    this.offset = meta.offset;
    this.applied += 1;
    return undefined;
  }

  #isMine(message: Extract<DataMessage, { type: 'delta_update' }>): boolean {
    return isDeltaOf(message, this.kind, this.id);
  }
}

function isDeltaOf(
  message: Extract<DataMessage, { type: 'delta_update' }>,
  kind: string,
  id: string,
): boolean {
  return message.payload.resource_type === kind && String(message.payload.resource_id) === id;
}

/**
 * Fetches one snapshot with `get_resource` on the client's connection: it is
 * answered after the subscriptions sent before it. Requests are paced under the
 * server's rate limit and sent again when the server may have dropped them;
 * fetches of the same resource asked for before its request is sent share it.
 * Rejects with the server's error (`serverCode`), when the connection drops
 * first (`disconnected`) or when `signal` aborts (`aborted`).
 */
export function requestResource(
  client: ATPWebSocket,
  kind: string,
  id: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<ResourceSnapshot> {
  return ResourceRequests.of(client).request(kind, id, options.signal);
}

/** Server codes after which a fetch is not retried by itself (only after a reconnect or `refetch()`). */
const FINAL_CODES: ReadonlySet<string> = new Set([
  'unknown_resource',
  'resource_not_found',
  'forbidden',
  'invalid_message',
]);

const defaultRetryDelay = (attempt: number) => Math.min(15_000, 500 * 2 ** attempt);

/** The longest delay a timer takes (2^31 - 1 ms, about 24.8 days); Node fires a longer one at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One live resource: its snapshot, then the live messages after the
 * snapshot's position, reduced in order by the application's reducer. A gap
 * on the connection, a new session, a message of a new epoch, a `delta_update`
 * of the resource that does not follow its version, or the reducer or
 * `matches` throwing fetches this resource again and goes on; no message is
 * applied twice or skipped. At most one `get_resource` of the handle is
 * unanswered at a time. Created by {@link openResource}; `close()` releases
 * its subscriptions.
 */
export class ResourceHandle<T> {
  readonly #client: ATPWebSocket;
  readonly #sync: ResourceSync<T>;
  readonly #options: ResourceOptions<T>;
  readonly #subscriptions: Subscription[];
  readonly #listeners = {
    change: new Set<ResourceEvents<T>['change']>(),
    resync: new Set<ResourceEvents<T>['resync']>(),
    error: new Set<ResourceEvents<T>['error']>(),
  };
  readonly #stops: Array<() => void> = [];
  readonly #matches: (message: DeliveredDataMessage) => boolean;
  readonly #keys: ReadonlySet<string>;
  #view: ResourceView<T> = { data: undefined, status: 'loading', error: undefined };
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  /** Consecutive failures of `reduce` or `matches`: the second and later refetch after a backoff. */
  #faults = 0;
  /** The fetch whose answer counts (the newest `begin`). */
  #token = 0;
  /** A fetch is under way: waiting for the subscriptions, or its request is unanswered. */
  #sending = false;
  /** A newer fetch was asked for after the request under way was sent: one more follows its answer. */
  #again = false;
  /** Indexes of `#subscriptions` the server refused: taken again by the next fetch. */
  readonly #refused = new Set<number>();
  /** Subscriptions not yet confirmed in this session (after a connect that resumed nothing). */
  #unconfirmed = new Set<string>();
  #waiters: Array<() => void> = [];
  /** A fetch was cut by a disconnect: fetch again on the next `connect`. */
  #cut = false;
  #closed = false;
  /** The fetch under way: aborted when the handle closes, a new session starts, or it takes too long. */
  #inFlight: AbortController | undefined;
  /** `applied` of the sync when `change` was last emitted. */
  #published = 0;

  constructor(client: ATPWebSocket, kind: string, id: string | number, options: ResourceOptions<T>) {
    checkArguments(kind, id, options as ResourceOptions<unknown>);
    this.#client = client;
    this.#options = options;
    this.#sync = new ResourceSync(kind, String(id), options.reduce, options.fromSnapshot);
    this.#subscriptions = options.subscriptions.map(({ topic, filter }, index) =>
      this.#take(topic, filter, index),
    );
    const { kind: ownKind, id: ownId } = this.#sync;
    this.#matches =
      options.matches ??
      ((message) =>
        // A delta of this kind is another resource's unless it names this id (the topic filters by kind only).
        (message.type !== 'delta_update' ||
          message.payload.resource_type !== ownKind ||
          isDeltaOf(message, ownKind, ownId)) &&
        this.#subscriptions.some((s) => matchesSubscription(message, { topic: s.topic, filter: s.filter })));
    const keys = new Set(this.#subscriptions.map((s) => canonicalSubscriptionKey(s.topic, s.filter)));
    this.#keys = keys;
    // What the connection received before this handle listened never reaches it (a subscription
    // already in force, shared, sends no `subscribed`): a snapshot must be at least that recent.
    const reached = client.position;
    if (reached) {
      this.#sync.observe(reached.epoch);
      this.#sync.seen(reached);
    }
    this.#stops.push(
      client.on('message', (message, meta) => this.#onMessage(message, meta)),
      client.on('subscribed', (info) => {
        const key = canonicalSubscriptionKey(info.topic, info.filter);
        this.#sync.observe(info.epoch);
        if (!keys.has(key)) return;
        this.#sync.subscribedAt(info);
        if (this.#unconfirmed.delete(key) && this.#unconfirmed.size === 0) this.#wake();
      }),
      client.on('sequence_gap', (gap: SequenceGapEvent) => {
        // A gap of one `subscribe … from` history concerns that subscription only (a resource holds none).
        if (gap.subscription) return;
        // What the connection skipped never reaches the handle: a snapshot must be at least where the
        // connection now is (a lost resume may also have moved it to another epoch, with no message yet).
        const at = client.position;
        if (at) {
          this.#sync.observe(at.epoch);
          this.#sync.seen(at);
        }
        this.#resync('gap');
      }),
      client.on('connect', ({ resumed }) => {
        // A new session subscribes again from scratch: a snapshot is taken once that is in force, and
        // one under way (it may hang) is of no use.
        this.#unconfirmed = resumed ? new Set() : new Set(this.#keys);
        if (!resumed) this.#inFlight?.abort();
        this.#wake();
        if (this.#cut || this.#sync.status === 'error') this.#resync('retry');
        // Nothing was resumed: what was published while away never arrives.
        else if (!resumed) this.#resync('new_session');
      }),
    );
    this.#resync('initial');
  }

  get kind(): string {
    return this.#sync.kind;
  }

  get id(): string {
    return this.#sync.id;
  }

  /** The data, status and error now (a new object after each change). */
  get view(): ResourceView<T> {
    return this.#view;
  }

  get data(): T | undefined {
    return this.#view.data;
  }

  get status(): ResourceStatus {
    return this.#view.status;
  }

  get error(): ATPWebSocketError | undefined {
    return this.#view.error;
  }

  /** The stream position the data reflects (`undefined` before the first snapshot). */
  get position(): { epoch: string; offset: number } | undefined {
    const { epoch, offset } = this.#sync;
    return epoch === undefined ? undefined : { epoch, offset };
  }

  /** The resource's own version (of its last `delta_update`), when the snapshot gave one. */
  get version(): number | undefined {
    return this.#sync.version;
  }

  /** Listens; returns a function that stops. A listener that throws is reported with `error`. */
  on<E extends keyof ResourceEvents<T>>(event: E, listener: ResourceEvents<T>[E]): () => void {
    const set = this.#listeners[event] as Set<ResourceEvents<T>[E]>;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Fetches the snapshot again now (and subscribes again to what the server refused). */
  refetch(): void {
    this.#resync('refetch');
  }

  /** Stops: releases the subscriptions and listeners; a fetch in flight is ignored. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inFlight?.abort();
    clearTimeout(this.#retryTimer);
    for (const stop of this.#stops.splice(0)) stop();
    for (const subscription of this.#subscriptions) subscription();
    this.#listeners.change.clear();
    this.#listeners.resync.clear();
    this.#listeners.error.clear();
    this.#wake();
  }

  #take(topic: string, filter: Filter | undefined, index: number): Subscription {
    const subscription = this.#client.subscribe(topic as never, filter as never);
    subscription.on('error', (error) => this.#onRefused(index, error));
    return subscription;
  }

  /** The server refused a subscription of the resource: nothing of it would arrive. */
  #onRefused(index: number, error: ATPWebSocketError): void {
    if (this.#closed) return;
    this.#refused.add(index);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#again = false;
    this.#token = this.#sync.fail(error);
    this.#unconfirmed.clear();
    this.#wake();
    this.#publish();
  }

  #onMessage(message: DeliveredDataMessage, meta: MessageMeta): void {
    this.#sync.observe(meta.epoch);
    let mine: boolean;
    try {
      mine = this.#matches(message);
    } catch (cause) {
      // Whether it belongs to the resource is unknown: the snapshot fetched next holds it if it does.
      const error = new ATPWebSocketError(
        'reducer_failed',
        `matches of ${this.kind} '${this.id}' threw on a ${message.type}: ${String(cause)}`,
        { cause },
      );
      this.#sync.error = error;
      this.#sync.seen(meta);
      this.#fault('matches_failed', error);
      return;
    }
    if (!mine) return;
    const applied = this.#sync.applied;
    const step = this.#sync.message(message, meta);
    if (this.#sync.applied > applied) this.#faults = 0;
    this.#step(step);
  }

  /** `reduce` or `matches` threw: refetch, at once the first time, then after a growing delay. */
  #fault(reason: ResyncReason, error: ATPWebSocketError): void {
    this.#report(error);
    this.#faults += 1;
    const delay = this.#faults > 1 ? this.#delay(this.#faults - 2) : 0;
    this.#resync(reason, delay);
  }

  #step(step: SyncStep): void {
    if (step === 'resync') this.#resync('epoch_changed');
    else if (step === 'version_gap') this.#resync('version_gap');
    else if (step === 'reducer_failed') {
      if (this.#sync.error) this.#fault('reducer_failed', this.#sync.error);
    } else if (step === 'behind' || step === 'snapshot_failed') {
      this.#publish();
      if (step === 'snapshot_failed' && this.#sync.error) this.#report(this.#sync.error);
      this.#retry();
    } else this.#publish();
  }

  /**
   * `retryDelay(attempt)` as a timer can take it: at most {@link MAX_TIMER_MS} (a longer one, as
   * `Infinity`, would fire at once), at least 0, and the default backoff for what is not a number.
   */
  #delay(attempt: number): number {
    const ms = (this.#options.retryDelay ?? defaultRetryDelay)(attempt);
    if (typeof ms !== 'number' || Number.isNaN(ms)) return defaultRetryDelay(attempt);
    return Math.min(MAX_TIMER_MS, Math.max(0, ms));
  }

  /** Fetches again after the backoff of the next attempt. */
  #retry(): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#resync('retry'), this.#delay(this.#attempt++));
  }

  /**
   * A newer snapshot is needed: messages are kept from now on, and it is fetched (after `delay`
   * ms if given). When a request is already unanswered, one more is sent after its answer.
   */
  #resync(reason: ResyncReason, delay = 0): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#cut = false;
    this.#renew();
    const absorbed = this.#sending && this.#again;
    this.#token = this.#sync.begin();
    this.#publish();
    // One `resync` per fetch: one already waiting for the request under way covers this one too.
    if (!absorbed) this.#emit('resync', reason);
    if (delay > 0) this.#retryTimer = setTimeout(() => this.#start(), delay);
    else this.#start();
  }

  #start(): void {
    this.#retryTimer = undefined;
    if (this.#closed) return;
    if (this.#sending) this.#again = true;
    else void this.#fetch();
  }

  /** Subscribes again to what the server refused (the refusal may not hold any more). */
  #renew(): void {
    for (const index of this.#refused) {
      const old = this.#subscriptions[index];
      if (!old) continue;
      old();
      this.#subscriptions[index] = this.#take(old.topic, old.filter, index);
    }
    this.#refused.clear();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #fetch(): Promise<void> {
    const { kind, id } = this.#sync;
    this.#sending = true;
    let token = this.#token;
    let snapshot: ResourceSnapshot | undefined;
    let failure: unknown;
    let failed = false;
    try {
      // Subscriptions first: the snapshot is taken after they are in force, so nothing after it is missed.
      await Promise.all(this.#subscriptions.map((s) => s.ready));
      while (this.#unconfirmed.size > 0 && !this.#closed && this.#refused.size === 0)
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      if (this.#closed || this.#refused.size > 0) {
        this.#sending = this.#again = false;
        return;
      }
      // Nothing was sent yet: this request answers every fetch asked for until now.
      token = this.#token;
      this.#again = false;
      const controller = new AbortController();
      this.#inFlight = controller;
      const { signal } = controller;
      const fetching = Promise.resolve(
        this.#options.fetch
          ? this.#options.fetch(kind, id, { signal })
          : requestResource(this.#client, kind, id, { signal }),
      );
      snapshot = await abandonable(
        fetching,
        controller,
        this.#options.fetchTimeout ?? FETCH_TIMEOUT_MS,
        `${kind} '${id}'`,
      );
    } catch (cause) {
      failed = true;
      failure = cause;
    }
    this.#sending = false;
    this.#inFlight = undefined;
    if (this.#closed) return;
    if (this.#again) {
      // Asked for after this request was sent: its answer may be older than what is needed.
      this.#again = false;
      void this.#fetch();
      return;
    }
    if (token !== this.#token) return; // superseded (a refused subscription)
    if (!failed && snapshot !== undefined) {
      // The connection's epoch as it knows it now (a `pong` tells it too, with no data message).
      const at = this.#client.position;
      if (at) this.#sync.observe(at.epoch);
      const step = this.#sync.snapshot(token, snapshot);
      if (step !== 'behind' && step !== 'snapshot_failed') this.#attempt = 0;
      this.#step(step);
      return;
    }
    const error =
      failure instanceof ATPWebSocketError
        ? failure
        : new ATPWebSocketError('server_error', `fetching ${kind} '${id}' failed: ${String(failure)}`, {
            cause: failure,
          });
    if (error.code === 'disconnected' && this.#sync.fetching) {
      this.#cut = true; // fetched again on the next `connect`
      return;
    }
    this.#sync.failed(token, error);
    this.#publish();
    if (error.serverCode !== undefined && FINAL_CODES.has(error.serverCode)) return;
    this.#retry();
  }

  #publish(): void {
    const { data, status, error, applied } = this.#sync;
    const view = this.#view;
    // A reducer may change the data in place and return it: an applied message is a change anyway.
    if (view.data === data && view.status === status && view.error === error && applied === this.#published)
      return;
    this.#published = applied;
    this.#view = { data, status, error };
    this.#emit('change', this.#view);
  }

  /** Calls each listener of `event`, isolated: one that throws is reported, the others still run. */
  #emit<E extends 'change' | 'resync'>(event: E, arg: Parameters<ResourceEvents<T>[E]>[0]): void {
    for (const fn of [...this.#listeners[event]]) {
      try {
        (fn as (value: typeof arg) => void)(arg);
      } catch (cause) {
        this.#report(
          new ATPWebSocketError(
            'listener_failed',
            `a ${event} listener of ${this.kind} '${this.id}' threw: ${String(cause)}`,
            { cause },
          ),
        );
      }
    }
  }

  /** Reports a failure to the `error` listeners, or to the console when there is none. */
  #report(error: ATPWebSocketError): void {
    const listeners = [...this.#listeners.error];
    if (listeners.length === 0) console.error(error);
    for (const fn of listeners) {
      try {
        fn(error);
      } catch (cause) {
        console.error(
          new ATPWebSocketError('listener_failed', `an error listener of ${this.kind} '${this.id}' threw`, {
            cause,
          }),
        );
      }
    }
  }
}

/**
 * `work`, or a rejection once `controller` aborts (`aborted`) or `ms` pass first (`fetch_timeout`,
 * aborting it): a fetch that never settles, whatever it does with its signal, does not hold the handle.
 */
function abandonable<T>(work: Promise<T>, controller: AbortController, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new ATPWebSocketError('fetch_timeout', `${what} did not arrive within ${ms} ms`);
      reject(error);
      controller.abort(error);
    }, ms);
    const abandoned = () => {
      clearTimeout(timer);
      reject(new ATPWebSocketError('aborted', `the fetch of ${what} was abandoned`));
    };
    controller.signal.addEventListener('abort', abandoned, { once: true });
    const settle = () => {
      clearTimeout(timer);
      controller.signal.removeEventListener('abort', abandoned);
    };
    work.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  });
}

/**
 * Opens a live resource on `client`: subscribes to `options.subscriptions`,
 * fetches the snapshot of `kind`/`id` from the server (`hub.resources`), then
 * applies every matching live message after the snapshot's position with
 * `options.reduce`. Only in the ESM/CJS builds, not in the browser IIFE.
 *
 * @example
 * const run = openResource(ws, 'suite_execution', 123, {
 *   subscriptions: [{ topic: 'suite:progress', filter: { suite_execution_id: 123 } }],
 *   reduce: (suite, message) =>
 *     message.type === 'suite_progress' ? { ...suite, ...message.payload } : suite,
 * });
 * run.on('change', ({ data, status }) => render(data, status));
 * // later
 * run.close();
 */
export function openResource<T>(
  client: ATPWebSocket,
  kind: string,
  id: string | number,
  options: ResourceOptions<T>,
): ResourceHandle<T> {
  return new ResourceHandle(client, kind, id, options);
}
