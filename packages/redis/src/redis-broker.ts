import { randomBytes } from 'node:crypto';
import { type DataMessage, GapReason, type ReplayFrom } from '@atp/ws-protocol';
import {
  type Broker,
  BrokerUnavailableError,
  type ClientInfo,
  type HistoryRead,
  type Logger,
  type ReadOptions,
  type StreamBatch,
  supersedeKeyOf,
} from '@atp/ws-server';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { Presence } from './presence.js';
import {
  APPEND_SCRIPT,
  CHECK_RUN_SCRIPT,
  COMPACT_SCRIPT,
  LOWER_EPOCH_START_SCRIPT,
  REEPOCH_SCRIPT,
  TAKE_SESSION_SCRIPT,
  TRIM_SCRIPT,
} from './scripts.js';
import { type EpochEntry, keysFor, type RawStreamEntry, type StreamKeys, toEntries } from './streams.js';

/** Sets KEYS[1] to ARGV[2] if it still holds ARGV[1]. */
const SWAP_RUN_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`;

/** Entries one script call handles at most when compacting or trimming. */
const PAGE = 1000;

/** How many of the newest entries read the read loop remembers, to find where a rewritten stream forked. */
const RING = 4096;

/** A Redis primary managed by Redis Sentinel: the broker asks the sentinels where the primary is, and follows failovers. */
export interface RedisSentinelOptions {
  /** Some (ideally all) of the sentinels; more are learnt from them. */
  sentinels: ReadonlyArray<{ host: string; port: number }>;
  /** The master name the sentinels monitor (`sentinel monitor <name> ...`). */
  name: string;
  /** Password of the Redis primary and replicas. */
  password?: string;
  /** Password of the sentinels themselves, when they require one. */
  sentinelPassword?: string;
  /** Database number. @default 0 */
  db?: number;
}

/**
 * A Redis Cluster: every key of a deployment is under one hash tag (`{<prefix>}`), so the stream and
 * its scripts live in one slot, on one master at a time. Slot moves and failovers are followed.
 */
export interface RedisClusterOptions {
  /** Some (ideally all) of the cluster's nodes; the others are learnt from them. */
  nodes: ReadonlyArray<{ host: string; port: number }>;
  /** Password of the nodes. */
  password?: string;
}

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions {
  /** Redis URL such as `redis://127.0.0.1:6379/0`. Ignored when `redis` or `sentinel` is given. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** A Sentinel-managed primary instead of `url`; failovers are followed without a restart. */
  sentinel?: RedisSentinelOptions;
  /** A Redis Cluster instead of `url` (see {@link RedisClusterOptions}). */
  cluster?: RedisClusterOptions;
  /** An ioredis instance to use (duplicated for the broker's own connections; it is not closed by the broker). */
  redis?: Redis;
  /** Prefix of every key, so several deployments can share one Redis. @default 'atp:ws' */
  prefix?: string;
  /** Most messages of history kept in the Redis Stream; the oldest go first. @default 100000 */
  maxMessages?: number;
  /** Most bytes of history kept (the messages' JSON); the oldest go first. @default 67108864 (64 MiB) */
  maxBytes?: number;
  /** History younger than this is never compacted, ms. @default 120000 */
  recentWindowMs?: number;
  /** The newest this many messages are never compacted. @default 10000 */
  recentMessages?: number;
  /** Messages older than this are trimmed from history, ms (0 = no age limit). @default 86400000 (24 h) */
  maxAgeMs?: number;
  /** TTL of a process's client list; a dead process's clients vanish within it, ms. @default 15000 */
  presenceTtlMs?: number;
  /** How long a disconnected client's session stays claimed by its principal, ms. @default 600000 */
  sessionTtlMs?: number;
  /** How long one blocking read waits before it re-checks the epoch, ms. @default 1000 */
  blockMs?: number;
  /** Where the broker logs outages and recoveries. @default silent */
  logger?: Logger;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function backoff(attempt: number): number {
  return Math.min(5000, 50 * 2 ** Math.min(attempt, 7));
}

/** Reconnection delays under Sentinel: a failover takes seconds, and the new primary is worth finding at once. */
function sentinelBackoff(attempt: number): number {
  return Math.min(500, 50 * 2 ** Math.min(attempt, 4));
}

/**
 * A broker on Redis: messages go to a capped Redis Stream (its history), every
 * process reads the stream in order with a blocking XREAD, and the epoch key
 * changes when Redis lost the stream, so stale positions are recognised.
 * During a Redis outage, connected clients keep being served, publishing fails
 * with {@link BrokerUnavailableError}, and delivery resumes once Redis is back.
 *
 * @example
 * const hub = createATPWebSocketServer({ server, broker: new RedisBroker({ url: process.env.ATP_WS_REDIS_URL }) });
 */
export class RedisBroker implements Broker {
  readonly #keys: StreamKeys;
  readonly #command: Redis;
  readonly #reader: Redis;
  readonly #options: Required<
    Omit<RedisBrokerOptions, 'url' | 'redis' | 'sentinel' | 'cluster' | 'logger' | 'prefix'>
  >;
  /**
   * Makes the subscriber connection. On a cluster, the connections are `Cluster` instances: they run
   * the same commands as `Redis` (routed by key), which is all the broker uses them for, except
   * INFO (see {@link RedisBroker.#runId}).
   */
  readonly #newSubscriber: () => Redis;
  /** Set on a cluster: the slot of every key of the deployment, once known. */
  readonly #cluster: { slot: number | undefined } | undefined;
  /** When the read loop last checked the run id of the master serving the stream (clusters only). */
  #runCheckedAt = 0;
  readonly #logger: Logger;
  readonly #presence: Presence;
  readonly #listeners = new Set<(batch: StreamBatch) => void>();
  readonly #sessionListeners = new Set<(clientId: string, serverId: string, order: number) => void>();
  #subscriber: Redis | undefined;
  /** Epochs this loop left: one coming back means Redis went back to an older state. */
  readonly #retired = new Set<string>();
  #subscribed: Promise<void> = Promise.resolve();
  /** The epoch the read loop follows ('' until it knows it). */
  #epoch = '';
  #lastOffset = 0;
  /** The nonce of the entry at `#lastOffset`, when known: the next entry must link back to it. */
  #lastNonce: string | undefined;
  #reading: Promise<void> | undefined;
  #trimTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Whether a run of {@link RedisBroker.#enforceLimits} is under way (one at a time per process). */
  #limiting = false;
  /** An epoch tag of entries the current epoch took over (appended before it began), accepted as its own. */
  #inherited: string | undefined;
  /** Nonces of the newest entries read, by offset modulo {@link RING}. */
  readonly #ringOffsets: number[] = [];
  readonly #ringNonces: string[] = [];
  /**
   * When the loop switched to an epoch that took the stream over below what it had delivered already
   * (another process started it from where it had read), the newest offset delivered: entries up to it
   * that are the ones delivered (same nonce) are not delivered again.
   */
  #deliveredThrough = 0;
  /** False until the read loop checked the Redis run id after the last (re)connection. */
  #runChecked = false;
  /** Limits were passed again while a run was under way: it runs once more. */
  #limitAgain = false;
  /** Resolved when the read loop first announces the epoch it follows. */
  readonly #firstAnnounce: { promise: Promise<void>; resolve: () => void } = (() => {
    let resolve: () => void = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    return { promise, resolve };
  })();
  /** Settles once the first connection attempt of the command connection succeeded or failed. */
  readonly #firstAttempt: Promise<void>;

  constructor(options: RedisBrokerOptions = {}) {
    const connection: RedisOptions = {
      // Commands fail at once during an outage instead of piling up: publishing must fail loudly.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A command cut off by a dropped connection may have run: resending it could append a message twice.
      autoResendUnfulfilledCommands: false,
      // Reconnects for ever, also when Redis was not there at start.
      retryStrategy: backoff,
      lazyConnect: false,
    };
    const { sentinel } = options;
    this.#command = options.cluster
      ? (undefined as unknown as Redis) // made below, with the reader
      : options.redis
        ? options.redis.duplicate(connection)
        : sentinel
          ? new Redis({
              ...connection,
              retryStrategy: sentinelBackoff,
              sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
              name: sentinel.name,
              ...(sentinel.password === undefined ? {} : { password: sentinel.password }),
              ...(sentinel.sentinelPassword === undefined
                ? {}
                : { sentinelPassword: sentinel.sentinelPassword }),
              db: sentinel.db ?? 0,
              // Sentinels unreachable: asked again soon, for ever.
              sentinelRetryStrategy: sentinelBackoff,
              // Told by the sentinels of a promotion (+switch-master), the connections move at once.
              failoverDetector: true,
            })
          : new Redis(options.url ?? 'redis://127.0.0.1:6379', connection);
    // The reader may wait through an outage: its blocking reads are retried by the read loop.
    const reading: RedisOptions = {
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResendUnfulfilledCommands: true,
      lazyConnect: false,
    };
    if (options.cluster) {
      this.#cluster = { slot: undefined };
      const nodes = options.cluster.nodes.map(({ host, port }) => ({ host, port }));
      const password = options.cluster.password === undefined ? {} : { password: options.cluster.password };
      const clusterOf = (redisOptions: RedisOptions, offline: boolean): Redis => {
        const clusterOptions: ClusterOptions = {
          enableOfflineQueue: offline,
          clusterRetryStrategy: backoff,
          lazyConnect: false,
          redisOptions: {
            maxRetriesPerRequest: redisOptions.maxRetriesPerRequest ?? null,
            autoResendUnfulfilledCommands: redisOptions.autoResendUnfulfilledCommands ?? true,
            ...password,
          },
        };
        return new Cluster(nodes, clusterOptions) as unknown as Redis;
      };
      this.#command = clusterOf(connection, false);
      this.#reader = clusterOf(reading, true);
      this.#newSubscriber = () => clusterOf(reading, true);
    } else {
      this.#cluster = undefined;
      this.#reader = this.#command.duplicate(reading);
      this.#newSubscriber = () => this.#reader.duplicate({ lazyConnect: false });
    }
    this.#keys = keysFor(options.prefix ?? 'atp:ws');
    this.#options = {
      maxMessages: options.maxMessages ?? 100_000,
      maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
      recentWindowMs: options.recentWindowMs ?? 120_000,
      recentMessages: options.recentMessages ?? 10_000,
      maxAgeMs: options.maxAgeMs ?? 24 * 60 * 60 * 1000,
      presenceTtlMs: options.presenceTtlMs ?? 15_000,
      sessionTtlMs: options.sessionTtlMs ?? 600_000,
      blockMs: options.blockMs ?? 1000,
    };
    this.#logger = options.logger ?? silent;
    this.#presence = new Presence(
      this.#command,
      this.#keys.presence,
      this.#keys.presenceIndex,
      this.#options.presenceTtlMs,
      this.#keys.session,
      this.#options.sessionTtlMs,
    );
    this.#command.defineCommand('atpAppend', { numberOfKeys: 8, lua: APPEND_SCRIPT });
    this.#command.defineCommand('atpCompact', { numberOfKeys: 3, lua: COMPACT_SCRIPT });
    this.#command.defineCommand('atpTrim', { numberOfKeys: 4, lua: TRIM_SCRIPT });
    this.#command.defineCommand('atpTakeSession', { numberOfKeys: 1, lua: TAKE_SESSION_SCRIPT });
    this.#reader.defineCommand('atpReepoch', { numberOfKeys: 4, lua: REEPOCH_SCRIPT });
    this.#reader.defineCommand('atpCheckRun', { numberOfKeys: 4, lua: CHECK_RUN_SCRIPT });
    this.#reader.defineCommand('atpLowerEpochStart', { numberOfKeys: 2, lua: LOWER_EPOCH_START_SCRIPT });
    if (!options.cluster) {
      this.#keepConnecting(this.#command, 'command');
      this.#keepConnecting(this.#reader, 'reader');
    }
    // After every (re)connection the read loop checks that Redis is still the same process.
    this.#reader.on('ready', () => {
      this.#runChecked = false;
    });
    let available = false;
    this.#command.on('ready', () => {
      if (!available) this.#logger.info({}, 'Redis is available');
      available = true;
    });
    this.#command.on('close', () => {
      if (available && !this.#closed)
        this.#logger.warn({}, 'Redis is unavailable; publishing fails until it returns');
      available = false;
    });
    this.#command.on('error', (error: Error) => this.#logger.debug({ err: error }, 'redis connection error'));
    this.#reader.on('error', (error: Error) => this.#logger.debug({ err: error }, 'redis reader error'));
    this.#firstAttempt = new Promise<void>((resolve) => {
      this.#command.once('ready', resolve);
      this.#command.once('error', () => resolve());
      this.#command.once('end', resolve);
    });
  }

  /**
   * Connects `redis` again when it ended though the broker did not close it. Its retry strategy never
   * gives up, yet ioredis ends a Sentinel connection for good when a promotion is announced
   * (`+switch-master`, to the failover detector) while it is still asking a sentinel where the primary
   * is: the answer then comes back to a connector closed meanwhile, and the connection is left ended,
   * so that publishing (and reading) would fail until a restart.
   */
  #keepConnecting(redis: Redis, what: string): void {
    let attempt = 0;
    redis.on('ready', () => {
      attempt = 0;
    });
    redis.on('end', () => {
      if (this.#closed) return;
      attempt += 1;
      this.#logger.warn({ connection: what }, 'the Redis connection ended; connecting again');
      const timer = setTimeout(() => {
        if (this.#closed || redis.status !== 'end') return;
        // A failure ends the connection again, and this runs again.
        redis
          .connect()
          .catch((error: Error) => this.#logger.debug({ err: error }, 'reconnecting to Redis failed'));
      }, sentinelBackoff(attempt));
      timer.unref();
    });
  }

  /** Whether Redis answers now. */
  get available(): boolean {
    return this.#command.status === 'ready';
  }

  async publish(messages: readonly DataMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.#usable();
    const candidate = randomBytes(6).toString('base64url');
    const nonce = randomBytes(9).toString('base64url');
    const args: string[] = [];
    for (const message of messages) args.push(JSON.stringify(message), supersedeKeyOf(message) ?? '');
    let kept: [string, number, number, number];
    try {
      kept = await this.#script<[string, number, number, number]>(
        this.#command,
        'atpAppend',
        this.#keys.stream,
        this.#keys.offset,
        this.#keys.epoch,
        this.#keys.last,
        this.#keys.epochFrom,
        this.#keys.bytes,
        this.#keys.newest,
        this.#keys.truncated,
        candidate,
        Date.now(),
        nonce,
        ...args,
      );
    } catch (cause) {
      throw new BrokerUnavailableError(`publishing to Redis failed: ${(cause as Error).message}`, { cause });
    }
    const [, , bytes, length] = kept;
    if (bytes > this.#options.maxBytes || length > this.#options.maxMessages) void this.#enforceLimits();
  }

  /**
   * Once the read loop runs, waits (a few seconds at most) until it announced the epoch it follows:
   * before that, a Redis restarted since the epoch began (a new run id) still shows the old epoch, and a
   * position handed out then would be one the read loop is about to leave.
   */
  async #announced(): Promise<void> {
    if (!this.#reading || this.#epoch !== '') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#firstAnnounce.promise,
      new Promise((resolve) => {
        timer = setTimeout(resolve, 5000);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Runs one of the scripts defined on `redis`. */
  #script<T>(redis: Redis, name: string, ...args: Array<string | number>): Promise<T> {
    return (redis as unknown as Record<string, (...a: Array<string | number>) => Promise<T>>)[name]?.(
      ...args,
    ) as Promise<T>;
  }

  /**
   * Brings history back under its limits, as the in-memory broker does: first
   * drops superseded progress older than the recent window, then the oldest
   * entries, down to 90% of the limits (so this runs once per 10% of growth).
   * One page per script call: Redis is never blocked for long.
   */
  async #enforceLimits(): Promise<void> {
    if (this.#limiting) {
      this.#limitAgain = true;
      return;
    }
    this.#limiting = true;
    try {
      do {
        this.#limitAgain = false;
        await this.#bringUnderLimits();
      } while (this.#limitAgain && !this.#closed);
    } catch (error) {
      this.#logger.debug({ err: error }, 'bringing history under its limits failed');
    } finally {
      this.#limiting = false;
    }
  }

  async #bringUnderLimits(): Promise<void> {
    {
      const head = Number((await this.#command.get(this.#keys.offset)) ?? 0);
      const protect = head - this.#options.recentMessages;
      const cutoff = Date.now() - this.#options.recentWindowMs;
      for (let after = 0; protect > 0; ) {
        const [last] = await this.#script<[number, number]>(
          this.#command,
          'atpCompact',
          this.#keys.stream,
          this.#keys.bytes,
          this.#keys.newest,
          after,
          PAGE,
          cutoff,
          protect,
        );
        if (last === 0) break;
        after = last;
      }
      // Trimmed only when compaction was not enough, and then to 90%, so that it runs once per 10% of growth.
      const [bytes, length] = await Promise.all([
        this.#command.get(this.#keys.bytes),
        this.#command.xlen(this.#keys.stream),
      ]);
      const { maxBytes, maxMessages } = this.#options;
      if (Number(bytes ?? 0) > maxBytes || length > maxMessages)
        await this.#trim(Math.floor(maxBytes * 0.9), Math.floor(maxMessages * 0.9), 0);
    }
  }

  /** Trims the oldest history, page by page, until within the limits. */
  async #trim(maxBytes: number, maxMessages: number, olderThan: number): Promise<void> {
    for (;;) {
      const [, done] = await this.#script<[number, number]>(
        this.#command,
        'atpTrim',
        this.#keys.stream,
        this.#keys.bytes,
        this.#keys.newest,
        this.#keys.truncated,
        maxBytes,
        maxMessages,
        olderThan,
        PAGE,
      );
      if (done === 1 || this.#closed) return;
    }
  }

  /**
   * Throws {@link BrokerUnavailableError} at once unless the command connection
   * is up; only the first connection attempt after construction is waited for.
   */
  async #usable(): Promise<void> {
    if (this.#closed) throw new BrokerUnavailableError('the Redis broker is closed');
    if (this.#command.status === 'ready') return;
    await this.#firstAttempt;
    if ((this.#command.status as string) !== 'ready') {
      throw new BrokerUnavailableError(`Redis is unavailable (connection ${this.#command.status})`);
    }
  }

  async subscribe(listener: (batch: StreamBatch) => void): Promise<() => Promise<void>> {
    this.#listeners.add(listener);
    if (this.#epoch !== '') listener({ epoch: this.#epoch, entries: [], head: this.#lastOffset });
    if (!this.#reading) {
      this.#reading = this.#readLoop();
      if (this.#options.maxAgeMs > 0) {
        this.#trimTimer = setInterval(
          () => void this.#trimByAge(),
          Math.min(60_000, this.#options.maxAgeMs / 4),
        );
        this.#trimTimer.unref();
      }
    }
    return async () => {
      this.#listeners.delete(listener);
    };
  }

  async read(from: ReplayFrom, options: ReadOptions = {}): Promise<HistoryRead> {
    await this.#usable();
    await this.#announced();
    const { epoch, head, base, truncated: trimmedThrough } = await this.#ensureEpoch();
    const sameEpoch = from !== 'start' && from.epoch === epoch;
    if (sameEpoch && from.offset > head)
      return { epoch, head, entries: [], complete: false, reason: GapReason.UnknownPosition };
    // An epoch that took over a diverged stream at `base` has no history before it.
    const fromOffset = sameEpoch ? Math.max(from.offset, base) : base;
    const start = `0-${fromOffset + 1}`;
    const raw = (
      options.limit === undefined
        ? await this.#command.xrange(this.#keys.stream, start, '+')
        : await this.#command.xrange(this.#keys.stream, start, '+', 'COUNT', Math.max(1, options.limit))
    ) as RawStreamEntry[];
    const entries = toEntries(raw).filter((entry) => entry.offset <= head);
    // Superseded progress compacted away leaves holes in the offsets that are no gap; trimming is.
    const truncated = sameEpoch && (from.offset < base || from.offset < trimmedThrough);
    if (from === 'start') return { epoch, head, entries, complete: true };
    if (from.epoch !== epoch) {
      return { epoch, head, entries, complete: false, reason: GapReason.EpochChanged };
    }
    if (truncated) return { epoch, head, entries, complete: false, reason: GapReason.HistoryTruncated };
    return { epoch, head, entries, complete: true };
  }

  async position(): Promise<{ epoch: string; offset: number }> {
    await this.#usable();
    await this.#announced();
    const { epoch, head } = await this.#ensureEpoch();
    return { epoch, offset: head };
  }

  async reportClients(serverId: string, clients: readonly ClientInfo[]): Promise<void> {
    await this.#usable();
    await this.#presence.report(serverId, clients);
  }

  async listClients(): Promise<ClientInfo[]> {
    await this.#usable();
    return this.#presence.list();
  }

  async claimSession(clientId: string, principalId: string | null, ttlMs: number): Promise<boolean> {
    await this.#usable();
    try {
      return await this.#presence.claim(clientId, principalId, ttlMs);
    } catch (cause) {
      throw new BrokerUnavailableError(`claiming a session in Redis failed: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  async takeSession(clientId: string, serverId: string): Promise<number> {
    await this.#usable();
    return this.#script<number>(
      this.#command,
      'atpTakeSession',
      this.#keys.sessionOrder,
      this.#keys.sessionTaken,
      clientId,
      serverId,
    );
  }

  async onSessionTaken(
    listener: (clientId: string, serverId: string, order: number) => void,
  ): Promise<() => Promise<void>> {
    if (!this.#subscriber) {
      // A connection of its own: a subscribed connection can run no other command.
      const subscriber = this.#newSubscriber();
      subscriber.on('error', (error: Error) => this.#logger.debug({ err: error }, 'redis subscriber error'));
      subscriber.on('message', (_channel: string, text: string) => {
        let clientId: unknown;
        let serverId: unknown;
        let order: unknown;
        try {
          [clientId, serverId, order] = JSON.parse(text) as unknown[];
        } catch {
          return;
        }
        if (typeof clientId !== 'string' || typeof serverId !== 'string' || typeof order !== 'number') return;
        for (const taken of this.#sessionListeners) taken(clientId, serverId, order);
      });
      if (!this.#cluster) this.#keepConnecting(subscriber, 'subscriber');
      this.#subscriber = subscriber;
      // Subscribed again by ioredis after a reconnect; waits for Redis when it is unreachable.
      this.#subscribed = subscriber.subscribe(this.#keys.sessionTaken).then(() => undefined);
    }
    this.#sessionListeners.add(listener);
    await this.#subscribed;
    return async () => {
      this.#sessionListeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sessionListeners.clear();
    this.#subscriber?.disconnect();
    clearInterval(this.#trimTimer);
    this.#listeners.clear();
    // The read loop sees `#closed` and ends; a blocking read in flight is cut by the disconnect.
    this.#reader.disconnect();
    await this.#command.quit().catch(() => this.#command.disconnect());
  }

  /** The current epoch (creating the first one) and the newest offset, through `redis`. */
  async #ensureEpoch(
    redis: Redis = this.#command,
  ): Promise<{ epoch: string; head: number; base: number; truncated: number }> {
    await redis.set(this.#keys.epoch, randomBytes(6).toString('base64url'), 'NX');
    const [epoch, head, base, truncated] = await redis.mget(
      this.#keys.epoch,
      this.#keys.offset,
      this.#keys.epochFrom,
      this.#keys.truncated,
    );
    return {
      epoch: epoch ?? '',
      head: Number(head ?? 0),
      base: Number(base ?? 0),
      truncated: Number(truncated ?? 0),
    };
  }

  /**
   * Reads the stream in order and hands each batch to the listeners, surviving
   * outages and epoch changes. It first announces where it starts (waiting for
   * Redis as long as it takes), then checks every entry's link to the one
   * before: a stream rewritten under it (offsets reused after a rollback) is
   * never followed silently, it starts a new epoch.
   */
  async #readLoop(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        if (this.#epoch === '') {
          const { epoch, head } = await this.#ensureEpoch(this.#reader);
          if (await this.#isRetired(epoch)) await this.#diverged(epoch);
          else {
            // Before announcing anything: a Redis restarted since (a new run id) gets a new epoch first.
            await this.#checkRun();
            if (this.#epoch === '') await this.#follow(epoch, head);
          }
          failures = 0;
          continue;
        }
        // On a cluster the stream's slot may move to another master (or fail over) with no reconnection seen.
        if (this.#cluster && Date.now() - this.#runCheckedAt > this.#options.blockMs)
          this.#runChecked = false;
        if (!this.#runChecked) {
          this.#runChecked = true;
          this.#runCheckedAt = Date.now();
          await this.#checkRun();
        }
        const result = (await this.#reader.xread(
          'COUNT',
          1000,
          'BLOCK',
          this.#options.blockMs,
          'STREAMS',
          this.#keys.stream,
          `0-${this.#lastOffset}`,
        )) as Array<[string, RawStreamEntry[]]> | null;
        failures = 0;
        const raw = result?.[0]?.[1];
        if (raw && raw.length > 0) await this.#take(toEntries(raw));
        else await this.#checkEpoch();
      } catch (error) {
        if (this.#closed) return;
        failures += 1;
        if (failures === 1) this.#logger.warn({ err: error }, 'reading the Redis stream failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoff(failures)));
      }
    }
  }

  /** Hands on the entries that continue the stream this loop follows; a break in it switches epochs. */
  async #take(entries: readonly EpochEntry[]): Promise<void> {
    const taken: EpochEntry[] = [];
    let skippedAfter: number | undefined;
    let broken: 'epoch' | 'diverged' | undefined;
    for (const entry of entries) {
      if (entry.epoch !== undefined && entry.epoch !== this.#epoch && entry.epoch !== this.#inherited) {
        // Appended under another epoch: a new stream grew past this loop's offset (Redis lost its
        // data), unless the current epoch took this stream over after the entry was appended.
        if ((await this.#reader.get(this.#keys.epoch)) !== this.#epoch) {
          broken = 'epoch';
          break;
        }
        this.#inherited = entry.epoch;
      }
      if (entry.offset > this.#lastOffset + 1) {
        // Entries this loop never read: compacted (superseded progress) or trimmed.
        skippedAfter ??= this.#lastOffset;
      } else if (
        this.#lastNonce !== undefined &&
        entry.prev !== undefined &&
        entry.prev !== this.#lastNonce
      ) {
        broken = 'diverged';
        break;
      }
      if (!this.#deliveredAlready(entry)) taken.push(entry);
      this.#lastOffset = entry.offset;
      this.#lastNonce = entry.nonce;
      this.#remember(entry.offset, entry.nonce);
    }
    // Trimmed before this loop read them: this process's clients are told of a hole.
    const hole =
      skippedAfter !== undefined &&
      Number((await this.#reader.get(this.#keys.truncated)) ?? 0) > skippedAfter;
    if (hole)
      this.#logger.warn({ offset: taken[0]?.offset }, 'the Redis stream was trimmed before it was read');
    if (taken.length > 0) this.#emit({ epoch: this.#epoch, entries: taken, ...(hole ? { hole } : {}) });
    if (broken === 'epoch') await this.#adoptEpoch();
    else if (broken === 'diverged') await this.#diverged();
  }

  /**
   * When Redis lost the stream (restart without persistence, flush), the
   * epoch key is gone or new; when it went back to an older state (a replica
   * that lagged, an old snapshot), the head is behind this loop or is not the
   * entry it read last.
   */
  async #checkEpoch(): Promise<void> {
    const [epoch, head, last] = await this.#reader.mget(this.#keys.epoch, this.#keys.offset, this.#keys.last);
    if (epoch === null) return; // lost, and nothing published since: the next publish starts an epoch
    if (epoch !== this.#epoch) return this.#adoptEpoch();
    const offset = Number(head ?? 0);
    const rewritten =
      offset === this.#lastOffset &&
      last !== null &&
      this.#lastNonce !== undefined &&
      last !== this.#lastNonce;
    if (offset < this.#lastOffset || rewritten) await this.#diverged();
  }

  /**
   * Redis restarted or failed over since the epoch began (its run id changed):
   * what it serves may be older than what was delivered, so a new epoch takes
   * over at the head, with a gap for live clients, whether or not anything was lost.
   */
  async #checkRun(): Promise<void> {
    const run = await this.#runId();
    if (!run) return;
    const stored = await this.#reader.get(this.#keys.run);
    // The same Redis process: nothing to do (and nothing to read; on a cluster this runs every blockMs).
    if (stored === run) return;
    if (stored !== null && (await this.#movedFrom(stored))) {
      // The stream's slot moved to another master (MIGRATE moves keys whole): nothing was lost.
      await this.#reader.eval(SWAP_RUN_SCRIPT, 1, this.#keys.run, stored, run);
      this.#logger.info({ from: stored, to: run }, "the Redis stream's slot moved to another master");
      return;
    }
    const agreed = await this.#agreedThrough();
    const [epoch, from] = await this.#script<[string, number]>(
      this.#reader,
      'atpCheckRun',
      this.#keys.epoch,
      this.#keys.offset,
      this.#keys.epochFrom,
      this.#keys.run,
      run,
      randomBytes(6).toString('base64url'),
      agreed === undefined ? '' : agreed,
    );
    if (epoch === '' || from < 0 || epoch === this.#epoch) return;
    this.#logger.warn({ epoch: this.#epoch, next: epoch, from }, 'Redis restarted or failed over: new epoch');
    await this.#follow(epoch, Number(from));
  }

  /**
   * On a cluster, whether the master whose run id the epoch recorded is still a master, alive: the
   * stream's slot was moved off it (resharding), not failed over (a failed master comes back as a replica).
   */
  async #movedFrom(run: string): Promise<boolean> {
    if (!this.#cluster) return false;
    const masters = (this.#reader as unknown as Cluster).nodes('master');
    const runs = await Promise.all(
      masters.map((node) =>
        node.info('server').then(
          (text) => /run_id:(\w+)/.exec(text)?.[1],
          () => undefined,
        ),
      ),
    );
    return runs.includes(run);
  }

  /** Whether `entry` is one this loop delivered under the epoch it left (see {@link RedisBroker.#deliveredThrough}). */
  #deliveredAlready(entry: EpochEntry): boolean {
    if (entry.offset > this.#deliveredThrough || entry.nonce === undefined) return false;
    const slot = entry.offset % RING;
    return this.#ringOffsets[slot] === entry.offset && this.#ringNonces[slot] === entry.nonce;
  }

  /** Records the nonce of an entry this loop read, the newest {@link RING} of them. */
  #remember(offset: number, nonce: string | undefined): void {
    if (nonce === undefined) return;
    const slot = offset % RING;
    this.#ringOffsets[slot] = offset;
    this.#ringNonces[slot] = nonce;
  }

  /**
   * The newest offset at which the stream Redis holds now still has the entry
   * this loop read there: everything after it is another timeline (undefined
   * when none of what this loop remembers is left, or it read nothing).
   */
  async #agreedThrough(): Promise<number | undefined> {
    const head = Number((await this.#reader.get(this.#keys.offset)) ?? 0);
    let end = Math.min(head, this.#lastOffset);
    const oldest = Math.max(1, this.#lastOffset - RING + 1);
    while (end >= oldest) {
      const raw = (await this.#reader.xrevrange(
        this.#keys.stream,
        `0-${end}`,
        `0-${oldest}`,
        'COUNT',
        200,
      )) as RawStreamEntry[];
      if (raw.length === 0) return undefined;
      for (const entry of toEntries(raw)) {
        const slot = entry.offset % RING;
        if (this.#ringOffsets[slot] === entry.offset && this.#ringNonces[slot] === entry.nonce)
          return entry.offset;
      }
      end = (toEntries(raw.slice(-1))[0]?.offset ?? oldest) - 1;
    }
    return undefined;
  }

  /** The run id of the Redis process the read loop is connected to (a restart or failover changes it). */
  async #runId(): Promise<string | undefined> {
    if (this.#cluster) {
      // INFO goes to any node of a cluster: the master serving the stream's slot is asked instead.
      const cluster = this.#reader as unknown as Cluster;
      this.#cluster.slot ??= Number(await cluster.cluster('KEYSLOT', this.#keys.stream));
      const owner = cluster.slots[this.#cluster.slot]?.[0];
      const node = cluster.nodes('master').find(({ options }) => `${options.host}:${options.port}` === owner);
      if (!node) return undefined;
      return /run_id:(\w+)/.exec(await node.info('server'))?.[1];
    }
    return /run_id:(\w+)/.exec(await this.#reader.info('server'))?.[1];
  }

  /** Follows the epoch Redis has now, from the offset it took over the stream at. */
  async #adoptEpoch(): Promise<void> {
    const [epoch, from] = await this.#reader.mget(this.#keys.epoch, this.#keys.epochFrom);
    if (!epoch || epoch === this.#epoch) return;
    // An epoch left earlier is back (Redis went back to an older state): what it holds was
    // delivered under it already; a new epoch takes over at its head instead.
    if (await this.#isRetired(epoch)) return this.#diverged(epoch);
    await this.#join(epoch, Number(from ?? 0));
  }

  /**
   * Follows an epoch another process started at `from`, the point up to which that process's
   * reading agrees with the stream. When this loop's reading agrees with the stream only up to a
   * lower point (it read other entries after it, which Redis lost, or it had not read as far), the
   * stream's entries between the two were never delivered here: the epoch then starts at the lower
   * point, so that they are delivered behind its gap rather than counted into it.
   */
  async #join(epoch: string, from: number): Promise<void> {
    let start = from;
    if (this.#lastOffset > 0 && !(await this.#agreesAt(from))) {
      const agreed = await this.#agreedThrough();
      if (agreed !== undefined && agreed < from) {
        const lowered = Number(
          await this.#script<number>(
            this.#reader,
            'atpLowerEpochStart',
            this.#keys.epoch,
            this.#keys.epochFrom,
            epoch,
            agreed,
          ),
        );
        // The epoch changed again meanwhile: the read loop finds the newer one next.
        if (lowered < 0) return;
        if (lowered < from)
          this.#logger.warn(
            { epoch, from, to: lowered },
            "the new epoch starts below where this process's reading agrees with the stream",
          );
        start = lowered;
      }
    }
    await this.#follow(epoch, start);
  }

  /** Whether this loop read, at `offset`, the entry the stream holds there now. */
  async #agreesAt(offset: number): Promise<boolean> {
    if (offset === 0 || offset > this.#lastOffset) return offset === 0;
    const slot = offset % RING;
    if (this.#ringOffsets[slot] !== offset) return false;
    const raw = (await this.#reader.xrange(
      this.#keys.stream,
      `0-${offset}`,
      `0-${offset}`,
    )) as RawStreamEntry[];
    return toEntries(raw)[0]?.nonce === this.#ringNonces[slot];
  }

  /** The stream diverged from what this loop read: a new epoch over it, which every process follows. */
  async #diverged(seen = this.#epoch): Promise<void> {
    // An epoch coming back was read in full already: it is taken over at its head.
    const agreed = seen === this.#epoch ? await this.#agreedThrough() : undefined;
    const candidate = randomBytes(6).toString('base64url');
    const [epoch, from] = await this.#script<[string, number]>(
      this.#reader,
      'atpReepoch',
      this.#keys.epoch,
      this.#keys.offset,
      this.#keys.epochFrom,
      this.#keys.run,
      seen,
      candidate,
      agreed === undefined ? '' : agreed,
      (await this.#runId()) ?? '',
    );
    this.#logger.warn(
      { epoch: this.#epoch, offset: this.#lastOffset, next: epoch, from },
      'the Redis stream went back behind what was read (a failover or an older snapshot): new epoch',
    );
    if (epoch === '') return;
    // Another process started the epoch (from where its reading agreed with the stream): joined.
    if (epoch !== candidate && seen === this.#epoch) await this.#join(epoch, Number(from));
    else await this.#follow(epoch, Number(from));
  }

  /** Reads on in `epoch` after `offset`, announcing it to the listeners. */
  async #follow(epoch: string, offset: number): Promise<void> {
    const at = (await this.#reader.xrange(
      this.#keys.stream,
      `0-${offset}`,
      `0-${offset}`,
    )) as RawStreamEntry[];
    if (this.#epoch !== '' && this.#epoch !== epoch) {
      this.#logger.warn({ from: this.#epoch, to: epoch }, 'the Redis stream has a new epoch');
      await this.#retire(this.#epoch);
    }
    // Taken over below what this loop delivered: what it delivered there is not delivered twice.
    if (this.#epoch !== epoch) this.#deliveredThrough = offset < this.#lastOffset ? this.#lastOffset : 0;
    this.#epoch = epoch;
    this.#lastOffset = offset;
    // The Redis it lives in is recorded (or checked) before reading on.
    this.#runChecked = false;
    this.#lastNonce = offset === 0 ? undefined : toEntries(at)[0]?.nonce;
    this.#emit({ epoch, entries: [], head: offset });
    this.#firstAnnounce.resolve();
  }

  /**
   * Remembers that the stream left `epoch`, here and in Redis (a key of its
   * own, so that going back to an older state of the other keys keeps it).
   */
  async #retire(epoch: string): Promise<void> {
    this.#retired.add(epoch);
    if (this.#retired.size > 64) this.#retired.delete(this.#retired.values().next().value as string);
    const ttl = Math.max(this.#options.maxAgeMs, 3_600_000);
    await this.#reader.set(`${this.#keys.retired}${epoch}`, '1', 'PX', ttl);
  }

  async #isRetired(epoch: string): Promise<boolean> {
    if (this.#retired.has(epoch)) return true;
    return (await this.#reader.exists(`${this.#keys.retired}${epoch}`)) === 1;
  }

  #emit(batch: StreamBatch): void {
    for (const listener of this.#listeners) {
      try {
        listener(batch);
      } catch (error) {
        this.#logger.error({ err: error }, 'a broker listener failed');
      }
    }
  }

  async #trimByAge(): Promise<void> {
    try {
      await this.#trim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Date.now() - this.#options.maxAgeMs);
    } catch (error) {
      this.#logger.debug({ err: error }, 'trimming old history failed');
    }
  }
}
