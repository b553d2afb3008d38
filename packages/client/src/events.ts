import type {
  DataMessageType,
  DataPayload,
  DeliveredDataMessage,
  Filter,
  FilterKey,
  FilterValue,
  FixedTopic,
  GapReason,
  ReplayFrom,
  ResourceMessage,
  TOPICS,
  Topic,
} from '@atp/ws-protocol';
import type { ATPWebSocketError } from './errors.js';
import type { SequenceGap } from './resume.js';
import type { StateChange } from './state.js';

/** What a data handler gets besides the payload. */
export interface MessageMeta<T extends DataMessageType = DataMessageType> {
  /** Per connection session: 1, 2, 3, … continued across reconnects (docs/PROTOCOL.md, "Sequence numbers"). */
  readonly sequence: number;
  readonly type: T;
  /** Stream position of the message: its epoch … */
  readonly epoch: string;
  /** … and offset. */
  readonly offset: number;
}

/** Handlers of the data message types: `(payload, meta)`. */
export type DataEvents = {
  [T in DataMessageType]: (payload: DataPayload<T>, meta: MessageMeta<T>) => void;
};

/** Payload of the `sequence_gap` event. */
export interface SequenceGapEvent extends SequenceGap {
  /** For a `subscribe` with `from` whose history was no longer complete: that subscription. */
  readonly subscription?: { readonly topic: string; readonly filter: Filter };
  readonly reason: GapReason;
}

/** Every event of {@link ATPWebSocket} and its handler's signature. */
export interface ATPWebSocketEvents extends DataEvents {
  /** The server said `connected` (first connect and every reconnect). */
  connect: (info: { clientId: string; resumed: boolean }) => void;
  /** An established connection ended; `willReconnect` tells whether a retry follows. */
  disconnect: (info: { code: number; reason: string; willReconnect: boolean }) => void;
  /** Something went wrong: a socket error, a server `error` message, a refusal, a timeout. */
  error: (info: { event: unknown; error: ATPWebSocketError }) => void;
  /** A reconnect attempt is scheduled in `delay` ms. */
  reconnecting: (info: { attempt: number; delay: number }) => void;
  /** `maxReconnectAttempts` attempts failed; the client is `closed`. */
  reconnect_failed: (info: { attempts: number }) => void;
  /** Data messages `expected` … `received - 1` will never arrive: refetch. */
  sequence_gap: (gap: SequenceGapEvent) => void;
  /**
   * The server confirmed a subscription (after a resume, restored ones are not confirmed one by one);
   * its messages arrive from stream position `epoch`/`offset` on (after its `from` history, if any).
   */
  subscribed: (info: { topic: string; filter: Filter; epoch: string; offset: number }) => void;
  /** The connection state changed. */
  state: (change: StateChange) => void;
  /** The answer to a `get_resource` (see `openResource`, which sends it and waits for this). */
  resource: (message: ResourceMessage) => void;
  /** Every data message, after its typed event. */
  message: (message: DeliveredDataMessage, meta: MessageMeta) => void;
}

/** A name of an {@link ATPWebSocketEvents} event. */
export type ATPWebSocketEventName = keyof ATPWebSocketEvents;

/** Options of {@link ATPWebSocket.subscribe}. */
export interface SubscribeOptions {
  /**
   * Replay the matching history before live messages: `'start'` from the
   * oldest kept message, or after a position `{ epoch, offset }` (a
   * `meta.epoch` / `meta.offset` seen earlier). Applies to the first wire
   * `subscribe` of the session; reconnects resume instead.
   */
  from?: ReplayFrom;
  /** Releases this reference when aborted; `unsubscribe(topic)` then never releases it. */
  signal?: AbortSignal;
}

/** Events of one {@link Subscription}. */
export interface SubscriptionEvents {
  /** A data message of this subscription (its history first, when it asked for `from`). */
  message: (message: DeliveredDataMessage, meta: MessageMeta) => void;
  /** The server refused this subscription (`error.serverCode` says why); it is not sent again. */
  error: (error: ATPWebSocketError) => void;
  /**
   * The messages of this subscription gathered over about one frame (16 ms), in order: at most
   * one call per frame however fast they come, for UIs that render once per batch.
   */
  batch: (
    messages: ReadonlyArray<{ readonly message: DeliveredDataMessage; readonly meta: MessageMeta }>,
  ) => void;
}

/**
 * What {@link ATPWebSocket.subscribe} returns: one reference to a subscription. Calling it
 * releases the reference, as `unsubscribe()` does; the wire `unsubscribe` goes with the last one.
 */
export interface Subscription {
  /** Releases this reference (idempotent). */
  (): void;
  readonly topic: string;
  /** The normalised filter (`{}` when none). */
  readonly filter: Filter;
  /** Resolves when the server confirmed the subscription; rejects with the server's code when refused. */
  readonly ready: Promise<void>;
  /** Releases this reference (idempotent). */
  unsubscribe(): void;
  /** Listens to this subscription only; returns a function that removes the listener. */
  on<E extends keyof SubscriptionEvents>(event: E, handler: SubscriptionEvents[E]): () => void;
}

/**
 * A topic of the protocol: a fixed one (`'test:progress'`, `'logs'`, …) or `` `events:${type}` ``.
 * A typo (`'test:progres'`) does not compile.
 */
export type TopicName = Topic;

/**
 * A topic typed as a plain `string` (known only at run time): accepted, while a string literal
 * that is no topic (a typo) is not.
 */
export type RuntimeTopic<S extends string> = string extends S ? S : never;

/** The filter keys a topic accepts: `'test:progress'` → `'suite_execution_id' | 'test_id'`. */
export type TopicFilterKey<T extends string> = T extends FixedTopic
  ? (typeof TOPICS)[T]['filterKeys'][number]
  : T extends `events:${string}`
    ? 'suite_execution_id'
    : FilterKey;

/** A filter of one topic: only its filter keys compile (`{ level }` on `'test:progress'` does not). */
export type TopicFilter<T extends string> = Readonly<Partial<Record<TopicFilterKey<T>, FilterValue>>>;
