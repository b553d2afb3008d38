import {
  canonicalSubscriptionKey,
  type DataMessage,
  type DeliveredDataMessage,
  type Filter,
  matchesSubscription,
  type ResourceSnapshot,
} from '@atp/ws-protocol';
import type { ATPWebSocket } from './client.js';
import { ATPWebSocketError } from './errors.js';
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
  | 'reducer_failed'
  | 'retry'
  | 'refetch';

/** Applies one live message to the resource's data; returns the new data (it may mutate and return the same). */
export type ResourceReducer<T> = (data: T, message: DeliveredDataMessage, meta: MessageMeta) => T;

/** Fetches a snapshot; the default sends `get_resource` on the client's connection. */
export type ResourceFetcher = (kind: string, id: string) => Promise<ResourceSnapshot>;

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
}

/** Events of a {@link ResourceHandle}. */
export interface ResourceEvents<T> {
  /** The view changed (data, status or error). */
  change: (view: ResourceView<T>) => void;
  /** A snapshot fetch starts, and why. */
  resync: (reason: ResyncReason) => void;
}

type Delivery = { readonly message: DeliveredDataMessage; readonly meta: MessageMeta };

/** What the state machine asks its owner to do after a step. */
export type SyncStep = 'resync' | 'version_gap' | 'behind' | undefined;

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
  /** The fetch whose answer counts; a newer one supersedes it. */
  #token = 0;
  #buffer: Delivery[] | undefined;
  /** Where the newest of the resource's subscriptions took effect: no message before it was received. */
  #floor: { epoch: string; offset: number } | undefined;

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
    const floor = this.#floor;
    if (floor?.epoch !== position.epoch || floor.offset < position.offset) this.#floor = { ...position };
  }

  /** The snapshot of fetch `token` arrived; returns whether another fetch is needed. */
  snapshot(token: number, snapshot: ResourceSnapshot): SyncStep {
    if (token !== this.#token || !this.#buffer) return undefined;
    // Older than the data held (a provider whose store lags the stream): the messages in between
    // were applied and are not kept, so it would lose them. Keep what arrives; fetch again.
    if (this.data !== undefined && snapshot.epoch === this.epoch && snapshot.offset < this.offset)
      return 'behind';
    // Older than where a subscription of the resource took effect: the messages in between were
    // never received. Keep what arrives; fetch again (the provider catches up).
    if (snapshot.epoch === this.#floor?.epoch && snapshot.offset < this.#floor.offset) return 'behind';
    const kept = this.#buffer;
    this.#buffer = undefined;
    this.data = this.fromSnapshot(snapshot.data);
    this.epoch = snapshot.epoch;
    this.offset = snapshot.offset;
    this.version = snapshot.version;
    this.status = 'live';
    this.error = undefined;
    for (const delivery of kept) {
      // A kept message of another epoch is from before the snapshot's epoch began; one after it
      // comes with a gap (the server marks every epoch change), which fetches again.
      if (delivery.meta.epoch !== this.epoch) continue;
      const step = this.message(delivery.message, delivery.meta);
      if (step) return step;
    }
    return undefined;
  }

  /** Fetch `token` failed. */
  failed(token: number, error: ATPWebSocketError): void {
    if (token !== this.#token) return;
    this.#buffer = undefined;
    this.status = 'error';
    this.error = error;
  }

  /** A live message of the resource; returns what the owner must do. */
  message(message: DeliveredDataMessage, meta: MessageMeta): SyncStep {
    if (this.#buffer) {
      this.#buffer.push({ message, meta });
      return undefined;
    }
    if (this.data === undefined || this.status === 'error') return undefined;
    if (meta.epoch !== this.epoch) return 'resync';
    if (meta.offset <= this.offset) return undefined;
    if (message.type === 'delta_update' && this.#isMine(message)) {
      const { sequence, base_sequence: base = sequence - 1 } = message.payload;
      if (this.version !== undefined && sequence <= this.version) {
        this.offset = meta.offset;
        return undefined;
      }
      if (this.version !== undefined && base !== this.version) return 'version_gap';
      this.version = sequence;
    }
    this.data = this.reduce(this.data, message, meta);
    this.offset = meta.offset;
    return undefined;
  }

  #isMine(message: Extract<DataMessage, { type: 'delta_update' }>): boolean {
    return message.payload.resource_type === this.kind && String(message.payload.resource_id) === this.id;
  }
}

let requests = 0;

/**
 * Fetches one snapshot with `get_resource` on the client's connection: it is
 * answered after the subscriptions sent before it. Rejects with the server's
 * error (`serverCode`) or when the connection drops first.
 */
export function requestResource(client: ATPWebSocket, kind: string, id: string): Promise<ResourceSnapshot> {
  const requestId = `resource-${++requests}`;
  const frame = { type: 'get_resource', id: requestId, payload: { kind, resource_id: id } } as const;
  return new Promise((resolve, reject) => {
    let resend: ReturnType<typeof setTimeout> | undefined;
    const stops = [
      client.on('resource', (message) => {
        if (message.id !== requestId) return;
        finish();
        resolve(message.payload);
      }),
      client.on('error', ({ event, error }) => {
        const eventId = (event as { id?: unknown } | undefined)?.id;
        if (eventId === undefined && error.serverCode === 'rate_limited') {
          // The server dropped frames, which ones is unknown: sent again unless answered meanwhile
          // (a late answer to the first still counts; a second answer is ignored).
          resend ??= setTimeout(
            () => {
              resend = undefined;
              client.send(frame);
            },
            RESEND_MS + Math.random() * RESEND_MS,
          );
          return;
        }
        if (eventId !== requestId) return;
        finish();
        reject(error);
      }),
      client.on('disconnect', () => {
        finish();
        reject(
          new ATPWebSocketError('disconnected', `the connection dropped before ${kind} '${id}' arrived`),
        );
      }),
    ];
    const finish = () => {
      clearTimeout(resend);
      for (const stop of stops) stop();
    };
    if (client.state !== 'open') {
      // Not queued while offline (a full send queue drops the oldest unanswered): fetched on `connect`.
      finish();
      reject(new ATPWebSocketError('disconnected', `not connected: ${kind} '${id}' is fetched on connect`));
      return;
    }
    client.send(frame);
  });
}

/** Delay before sending again a `get_resource` the server may have dropped for rate (plus up to as much jitter). */
const RESEND_MS = 1000;

/** Server codes after which a fetch is not retried by itself (only after a reconnect or `refetch()`). */
const FINAL_CODES: ReadonlySet<string> = new Set([
  'unknown_resource',
  'resource_not_found',
  'forbidden',
  'invalid_message',
]);

const defaultRetryDelay = (attempt: number) => Math.min(15_000, 500 * 2 ** attempt);

/**
 * One live resource: its snapshot, then the live messages after the
 * snapshot's position, reduced in order by the application's reducer. A gap
 * on the connection, a message of a new epoch or a `delta_update` of the
 * resource that does not follow its version fetches this resource again and
 * goes on; no message is applied twice or skipped. Created by
 * {@link openResource}; `close()` releases its subscriptions.
 */
export class ResourceHandle<T> {
  readonly #client: ATPWebSocket;
  readonly #sync: ResourceSync<T>;
  readonly #options: ResourceOptions<T>;
  readonly #subscriptions: Subscription[];
  readonly #listeners = {
    change: new Set<ResourceEvents<T>['change']>(),
    resync: new Set<ResourceEvents<T>['resync']>(),
  };
  readonly #stops: Array<() => void> = [];
  readonly #matches: (message: DeliveredDataMessage) => boolean;
  #view: ResourceView<T> = { data: undefined, status: 'loading', error: undefined };
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  /** A fetch was cut by a disconnect: fetch again on the next `connect`. */
  #cut = false;
  #closed = false;

  constructor(client: ATPWebSocket, kind: string, id: string | number, options: ResourceOptions<T>) {
    this.#client = client;
    this.#options = options;
    this.#sync = new ResourceSync(kind, String(id), options.reduce, options.fromSnapshot);
    this.#subscriptions = options.subscriptions.map(({ topic, filter }) =>
      client.subscribe(topic as never, filter as never),
    );
    this.#matches =
      options.matches ??
      ((message) =>
        this.#subscriptions.some((s) => matchesSubscription(message, { topic: s.topic, filter: s.filter })));
    const keys = new Set(this.#subscriptions.map((s) => canonicalSubscriptionKey(s.topic, s.filter)));
    this.#stops.push(
      client.on('message', (message, meta) => {
        if (this.#matches(message)) this.#step(this.#sync.message(message, meta));
      }),
      client.on('subscribed', (info) => {
        if (keys.has(canonicalSubscriptionKey(info.topic, info.filter))) this.#sync.subscribedAt(info);
      }),
      client.on('sequence_gap', (gap: SequenceGapEvent) => {
        // A gap of one `subscribe … from` history concerns that subscription only (a resource holds none).
        if (!gap.subscription) this.#resync('gap');
      }),
      client.on('connect', () => {
        if (this.#cut || this.#sync.status === 'error') this.#resync('retry');
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

  /** Listens; returns a function that stops. */
  on<E extends keyof ResourceEvents<T>>(event: E, listener: ResourceEvents<T>[E]): () => void {
    const set = this.#listeners[event] as Set<ResourceEvents<T>[E]>;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Fetches the snapshot again now. */
  refetch(): void {
    this.#resync('refetch');
  }

  /** Stops: releases the subscriptions and listeners; a fetch in flight is ignored. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    for (const stop of this.#stops.splice(0)) stop();
    for (const subscription of this.#subscriptions) subscription();
    this.#listeners.change.clear();
    this.#listeners.resync.clear();
  }

  #step(step: SyncStep): void {
    if (step === 'resync') this.#resync('epoch_changed');
    else if (step === 'version_gap') this.#resync('version_gap');
    else if (step === 'behind') {
      clearTimeout(this.#retryTimer);
      const delay = (this.#options.retryDelay ?? defaultRetryDelay)(this.#attempt++);
      this.#retryTimer = setTimeout(() => this.#resync('retry'), delay);
    } else this.#publish();
  }

  #resync(reason: ResyncReason): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#cut = false;
    const token = this.#sync.begin();
    this.#publish();
    for (const fn of [...this.#listeners.resync]) fn(reason);
    void this.#fetch(token);
  }

  async #fetch(token: number): Promise<void> {
    const { kind, id } = this.#sync;
    try {
      // Subscriptions first: the snapshot is taken after they are in force, so nothing after it is missed.
      await Promise.all(this.#subscriptions.map((s) => s.ready));
      const fetch = this.#options.fetch ?? ((k: string, i: string) => requestResource(this.#client, k, i));
      const snapshot = await fetch(kind, id);
      if (this.#closed) return;
      let step: SyncStep;
      try {
        step = this.#sync.snapshot(token, snapshot);
      } catch (cause) {
        this.#sync.failed(
          token,
          new ATPWebSocketError('listener_failed', `the reducer of ${kind} threw`, { cause }),
        );
        this.#publish();
        this.#resync('reducer_failed');
        return;
      }
      if (step !== 'behind') this.#attempt = 0;
      this.#step(step);
    } catch (cause) {
      if (this.#closed) return;
      const error =
        cause instanceof ATPWebSocketError
          ? cause
          : new ATPWebSocketError('server_error', `fetching ${kind} '${id}' failed: ${String(cause)}`, {
              cause,
            });
      if (error.code === 'disconnected' && this.#sync.fetching) {
        this.#cut = true; // fetched again on the next `connect`
        return;
      }
      this.#sync.failed(token, error);
      this.#publish();
      if (error.serverCode !== undefined && FINAL_CODES.has(error.serverCode)) return;
      const delay = (this.#options.retryDelay ?? defaultRetryDelay)(this.#attempt++);
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#resync('retry'), delay);
    }
  }

  #publish(): void {
    const { data, status, error } = this.#sync;
    const view = this.#view;
    if (view.data === data && view.status === status && view.error === error) return;
    this.#view = { data, status, error };
    for (const fn of [...this.#listeners.change]) fn(this.#view);
  }
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
