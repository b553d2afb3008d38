import type { DataMessage, GapReason, ReplayFrom } from '@atp/ws-protocol';
import type { ClientInfo } from './types.js';

/** One message of the broker's stream, with its offset in the stream. */
export interface StreamEntry {
  /** Position in the stream: 1 for the first message of an epoch, +1 for each next one. */
  readonly offset: number;
  readonly message: DataMessage;
  /** `message` serialized as JSON, once, by the broker. */
  readonly json: string;
  /** When the message was appended, ms since the epoch (for the publish-to-send latency metric). */
  readonly publishedAt?: number;
  /**
   * `supersedeKeyOf(message)`, when the broker computed it already (the hub computes it when this is
   * undefined).
   */
  readonly supersedeKey?: string | undefined;
}

/**
 * A batch of entries delivered to a broker subscriber, all from one epoch, in
 * offset order. A batch without entries announces a position instead: where
 * the subscriber starts reading (right after it subscribed) or a new epoch
 * (the stream's history was lost or diverged), with `head` its newest offset.
 */
export interface StreamBatch {
  readonly epoch: string;
  readonly entries: readonly StreamEntry[];
  /** In a batch without entries: the newest offset of the stream in `epoch`, the position reading goes on from. */
  readonly head?: number;
  /**
   * Entries before this batch's first were lost to this subscriber (trimmed
   * from history before it read them): the hub marks a gap for its clients.
   */
  readonly hole?: boolean;
}

/** Options of {@link Broker.read}. */
export interface ReadOptions {
  /** Most entries to return; read the next page after the last entry returned, until `head`. */
  readonly limit?: number;
}

/** What {@link Broker.read} found after a position. */
export interface HistoryRead {
  /** The stream's current epoch. */
  readonly epoch: string;
  /** Kept entries after the position, in offset order (superseded progress may be compacted away), at most `limit`. */
  readonly entries: readonly StreamEntry[];
  /** Offset of the newest entry when the read happened (0 when the stream is empty). */
  readonly head: number;
  /**
   * False when messages after the position are no longer kept, the epoch
   * changed (the entries are then the new epoch's, from its start) or the
   * position is ahead of the stream. Reading from `'start'` is always complete:
   * it means the oldest entry kept.
   */
  readonly complete: boolean;
  /** Why `complete` is false. */
  readonly reason?: GapReason;
}

/**
 * Where published messages go and where their history is kept. The hub
 * publishes through it and fans out what it delivers; one process uses the
 * in-memory broker, several share one through Redis (`@atp/ws-redis`).
 */
export interface Broker {
  /** Appends messages to the stream in order; resolves once they are stored. Rejects when the broker is unavailable. */
  publish(messages: readonly DataMessage[]): Promise<void>;
  /**
   * Calls `listener` with every batch appended to the stream from now on (by
   * any process), in offset order. Resolves with a function that stops it.
   * A broker should first call it with a batch without entries announcing
   * the position it reads on from, as soon as it knows it (the hub waits for
   * it before greeting clients), and another one on each new epoch; the hub
   * falls back to {@link Broker.position} for a broker that does not.
   * Subscribing must not fail while the broker is unreachable: it announces
   * the position once it can.
   */
  subscribe(listener: (batch: StreamBatch) => void): Promise<() => Promise<void>>;
  /**
   * Reads the kept history after a position, or from the oldest kept entry
   * with `'start'`, at most `options.limit` entries at a time.
   */
  read(from: ReplayFrom, options?: ReadOptions): Promise<HistoryRead>;
  /** The current epoch and newest offset. */
  position(): Promise<{ epoch: string; offset: number }>;
  /** Releases the broker's resources. */
  close(): Promise<void>;
  /** Whether the broker is reachable now (absent: always). Reported as the `atp_ws_broker_up` metric. */
  readonly available?: boolean;
  /**
   * Shares this process's client list so that every process can list all
   * clients; an entry not refreshed in time disappears (the process died).
   */
  reportClients?(serverId: string, clients: readonly ClientInfo[]): Promise<void>;
  /** Every client of every process sharing the broker. */
  listClients?(): Promise<ClientInfo[]>;
  /**
   * Claims a `client_id` for a principal across processes, for `ttlMs`
   * (refreshed by {@link Broker.reportClients} while connected). Resolves false
   * when another principal holds it, so a session is resumed only by its owner.
   */
  claimSession?(clientId: string, principalId: string | null, ttlMs: number): Promise<boolean>;
  /**
   * Tells the other processes sharing the broker that process `serverId` now
   * holds a live connection of `clientId`: one session is live in one place,
   * so an older connection of it elsewhere is closed (4000). Resolves with the
   * take's place in one order shared by all processes: of two connections
   * taken at the same moment on two processes, the later in that order stays.
   */
  takeSession?(clientId: string, serverId: string): Promise<number>;
  /** Calls `listener` whenever a process takes a session; resolves with a function that stops it. */
  onSessionTaken?(
    listener: (clientId: string, serverId: string, order: number) => void,
  ): Promise<() => Promise<void>>;
}

/** Thrown (or rejected with) when the broker cannot be reached: nothing was published. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  readonly code = 'broker_unavailable';

  constructor(message = 'the broker is unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}
