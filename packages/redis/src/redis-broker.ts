import { randomBytes } from 'node:crypto';
import { type DataMessage, GapReason, type ReplayFrom } from '@atp/ws-protocol';
import {
  type Broker,
  BrokerUnavailableError,
  type ClientInfo,
  type HistoryRead,
  type Logger,
  type StreamBatch,
} from '@atp/ws-server';
import { Redis, type RedisOptions } from 'ioredis';
import { Presence } from './presence.js';
import {
  APPEND_SCRIPT,
  keysFor,
  offsetOf,
  type RawStreamEntry,
  type StreamKeys,
  toEntries,
} from './streams.js';

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions {
  /** Redis URL such as `redis://127.0.0.1:6379/0`. Ignored when `redis` is given. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** An ioredis instance to use (duplicated for the broker's own connections; it is not closed by the broker). */
  redis?: Redis;
  /** Prefix of every key, so several deployments can share one Redis. @default 'atp:ws' */
  prefix?: string;
  /** Most messages of history kept in the Redis Stream (approximate trim). @default 100000 */
  maxMessages?: number;
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
  readonly #options: Required<Omit<RedisBrokerOptions, 'url' | 'redis' | 'logger' | 'prefix'>>;
  readonly #logger: Logger;
  readonly #presence: Presence;
  readonly #listeners = new Set<(batch: StreamBatch) => void>();
  #epoch = '';
  #lastOffset = 0;
  #available = false;
  #reading: Promise<void> | undefined;
  #trimTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #ready: Promise<void>;

  constructor(options: RedisBrokerOptions = {}) {
    const connection: RedisOptions = {
      // Commands fail at once during an outage instead of piling up: publishing must fail loudly.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A command cut off by a dropped connection may have run: resending it could append a message twice.
      autoResendUnfulfilledCommands: false,
      retryStrategy: backoff,
      lazyConnect: true,
    };
    this.#command = options.redis
      ? options.redis.duplicate(connection)
      : new Redis(options.url ?? 'redis://127.0.0.1:6379', connection);
    // The reader may wait through an outage: its blocking reads are retried by the read loop.
    this.#reader = this.#command.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResendUnfulfilledCommands: true,
      lazyConnect: true,
    });
    this.#keys = keysFor(options.prefix ?? 'atp:ws');
    this.#options = {
      maxMessages: options.maxMessages ?? 100_000,
      maxAgeMs: options.maxAgeMs ?? 24 * 60 * 60 * 1000,
      presenceTtlMs: options.presenceTtlMs ?? 15_000,
      sessionTtlMs: options.sessionTtlMs ?? 600_000,
      blockMs: options.blockMs ?? 1000,
    };
    this.#logger = options.logger ?? silent;
    this.#presence = new Presence(
      this.#command,
      this.#keys.presence,
      this.#options.presenceTtlMs,
      this.#keys.session,
      this.#options.sessionTtlMs,
    );
    this.#command.defineCommand('atpAppend', { numberOfKeys: 3, lua: APPEND_SCRIPT });
    this.#command.on('ready', () => this.#setAvailable(true));
    this.#command.on('close', () => this.#setAvailable(false));
    this.#command.on('error', (error: Error) => this.#logger.debug({ err: error }, 'redis connection error'));
    this.#reader.on('error', (error: Error) => this.#logger.debug({ err: error }, 'redis reader error'));
    this.#ready = Promise.all([this.#command.connect(), this.#reader.connect()]).then(() => undefined);
    // A failed first connect surfaces through the methods that await `#ready`.
    this.#ready.catch(() => {});
  }

  /** Whether Redis answers now. */
  get available(): boolean {
    return this.#available;
  }

  async publish(messages: readonly DataMessage[]): Promise<void> {
    if (messages.length === 0) return;
    if (this.#closed) throw new BrokerUnavailableError('the Redis broker is closed');
    await this.#ready.catch((cause: unknown) => {
      throw new BrokerUnavailableError('Redis is unavailable', { cause });
    });
    const candidate = randomBytes(6).toString('base64url');
    const jsons = messages.map((message) => JSON.stringify(message));
    try {
      await (
        this.#command as unknown as {
          atpAppend(...args: Array<string | number>): Promise<[string, number]>;
        }
      ).atpAppend(
        this.#keys.stream,
        this.#keys.offset,
        this.#keys.epoch,
        candidate,
        this.#options.maxMessages,
        Date.now(),
        ...jsons,
      );
    } catch (cause) {
      throw new BrokerUnavailableError(`publishing to Redis failed: ${(cause as Error).message}`, { cause });
    }
  }

  async subscribe(listener: (batch: StreamBatch) => void): Promise<() => Promise<void>> {
    this.#listeners.add(listener);
    if (!this.#reading) {
      const { epoch, offset } = await this.position();
      this.#epoch = epoch;
      this.#lastOffset = offset;
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

  async read(from: ReplayFrom): Promise<HistoryRead> {
    await this.#ready;
    const { epoch, head } = await this.#ensureEpoch();
    const fromOffset = from === 'start' || from.epoch !== epoch ? 0 : from.offset;
    if (fromOffset > head)
      return { epoch, head, entries: [], complete: false, reason: GapReason.UnknownPosition };
    const raw = (await this.#command.xrange(
      this.#keys.stream,
      `0-${fromOffset + 1}`,
      '+',
    )) as RawStreamEntry[];
    const entries = toEntries(raw).filter((entry) => entry.offset <= head);
    const firstKept = entries[0]?.offset ?? head + 1;
    const truncated = head > fromOffset && firstKept > fromOffset + 1;
    if (from !== 'start' && from.epoch !== epoch) {
      return { epoch, head, entries, complete: false, reason: GapReason.EpochChanged };
    }
    if (truncated) return { epoch, head, entries, complete: false, reason: GapReason.HistoryTruncated };
    return { epoch, head, entries, complete: true };
  }

  async position(): Promise<{ epoch: string; offset: number }> {
    await this.#ready;
    const { epoch, head } = await this.#ensureEpoch();
    return { epoch, offset: head };
  }

  async reportClients(serverId: string, clients: readonly ClientInfo[]): Promise<void> {
    await this.#presence.report(serverId, clients);
  }

  async listClients(): Promise<ClientInfo[]> {
    return this.#presence.list();
  }

  async claimSession(clientId: string, principalId: string | null, ttlMs: number): Promise<boolean> {
    try {
      return await this.#presence.claim(clientId, principalId, ttlMs);
    } catch (cause) {
      throw new BrokerUnavailableError(`claiming a session in Redis failed: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#trimTimer);
    this.#listeners.clear();
    // The read loop sees `#closed` and ends; a blocking read in flight is cut by the disconnect.
    this.#reader.disconnect();
    await this.#command.quit().catch(() => this.#command.disconnect());
  }

  /** The current epoch (creating the first one) and the newest offset. */
  async #ensureEpoch(): Promise<{ epoch: string; head: number }> {
    await this.#command.set(this.#keys.epoch, randomBytes(6).toString('base64url'), 'NX');
    const [epoch, head] = await this.#command.mget(this.#keys.epoch, this.#keys.offset);
    return { epoch: epoch ?? '', head: Number(head ?? 0) };
  }

  /** Reads the stream in order and hands each batch to the listeners, surviving outages and epoch changes. */
  async #readLoop(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
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
        if (raw && raw.length > 0) {
          const entries = toEntries(raw);
          if (entries[0]?.epoch !== undefined && entries[0].epoch !== this.#epoch) {
            // Redis lost the stream and a new one grew past our offset: read the new one from its start.
            this.#switchEpoch(entries[0].epoch);
            continue;
          }
          this.#lastOffset = offsetOf(raw[raw.length - 1]?.[0] ?? '0-0');
          this.#emit({ epoch: this.#epoch, entries });
        } else {
          await this.#checkEpoch();
        }
      } catch (error) {
        if (this.#closed) return;
        failures += 1;
        if (failures === 1) this.#logger.warn({ err: error }, 'reading the Redis stream failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoff(failures)));
      }
    }
  }

  /**
   * When Redis lost the stream (restart without persistence, flush), the
   * epoch key is gone or new: read the new stream from its start, under the new epoch.
   */
  async #checkEpoch(): Promise<void> {
    const epoch = await this.#reader.get(this.#keys.epoch);
    if (epoch !== null && epoch !== this.#epoch) this.#switchEpoch(epoch);
  }

  #switchEpoch(epoch: string): void {
    this.#logger.warn(
      { from: this.#epoch, to: epoch },
      'the Redis stream has a new epoch; history before it is lost',
    );
    this.#epoch = epoch;
    this.#lastOffset = 0;
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
      const cutoff = Date.now() - this.#options.maxAgeMs;
      const oldest = (await this.#command.xrange(
        this.#keys.stream,
        '-',
        '+',
        'COUNT',
        1000,
      )) as RawStreamEntry[];
      const keep = toEntries(oldest).find((entry) => (entry.publishedAt ?? 0) >= cutoff);
      const minId = keep
        ? `0-${keep.offset}`
        : oldest.length > 0
          ? `0-${offsetOf(oldest.at(-1)?.[0] ?? '0-0') + 1}`
          : undefined;
      if (minId) await this.#command.xtrim(this.#keys.stream, 'MINID', minId);
    } catch (error) {
      this.#logger.debug({ err: error }, 'trimming old history failed');
    }
  }

  #setAvailable(available: boolean): void {
    if (available === this.#available) return;
    this.#available = available;
    if (available) this.#logger.info({}, 'Redis is available');
    else if (!this.#closed) this.#logger.warn({}, 'Redis is unavailable; publishing fails until it returns');
  }
}
