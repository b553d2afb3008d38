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
}

/** A batch of entries delivered to a broker subscriber, all from one epoch, in offset order. */
export interface StreamBatch {
  readonly epoch: string;
  readonly entries: readonly StreamEntry[];
}

/** What {@link Broker.read} found after a position. */
export interface HistoryRead {
  /** The stream's current epoch. */
  readonly epoch: string;
  /** Kept entries after the position, in offset order (superseded progress may be compacted away). */
  readonly entries: readonly StreamEntry[];
  /** Offset of the newest entry when the read happened (0 when the stream is empty). */
  readonly head: number;
  /** False when messages after the position are no longer kept (or the epoch changed). */
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
   */
  subscribe(listener: (batch: StreamBatch) => void): Promise<() => Promise<void>>;
  /** Reads the kept history after a position, or from the oldest kept entry with `'start'`. */
  read(from: ReplayFrom): Promise<HistoryRead>;
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
}

/** Thrown (or rejected with) when the broker cannot be reached: nothing was published. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  readonly code = 'broker_unavailable';

  constructor(message = 'the broker is unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}
