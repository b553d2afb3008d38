import type {
  ATPWebSocketError,
  DataMessageType,
  DataPayload,
  MessageMeta,
  ReplayFrom,
  TopicFilter,
  TopicName,
} from '@atp/ws-client';
import { canonicalSubscriptionKey, type TOPICS } from '@atp/ws-protocol';
import { useEffect, useMemo, useRef, useState } from 'react';
import { useATPWebSocketClient } from './provider.js';

/** The data message type a topic delivers: `'test:progress'` → `'test_progress'`, `'events:*'` → `'event'`. */
export type TopicMessageType<T extends string> = T extends keyof typeof TOPICS
  ? (typeof TOPICS)[T]['delivers']
  : T extends `events:${string}`
    ? 'event'
    : DataMessageType;

type PayloadOf = { [K in DataMessageType]: DataPayload<K> };

/** The payload of the messages a topic delivers. */
export type TopicPayload<T extends string> = PayloadOf[TopicMessageType<T>];

/** Handler of {@link useATPSubscription}. */
export type SubscriptionHandler<T extends string> = (
  payload: TopicPayload<T>,
  meta: MessageMeta<TopicMessageType<T>>,
) => void;

/** Options of {@link useATPSubscription}; read when the subscription is made. */
export interface SubscriptionOptions {
  /** Replay history first: `'start'`, or after a `{ epoch, offset }` seen earlier. */
  from?: ReplayFrom;
  /** `false` holds no subscription (a filter not known yet). @default true */
  enabled?: boolean;
  /** Called when the server refuses the subscription (`error.serverCode` says why). */
  onError?: (error: ATPWebSocketError) => void;
  /** Called when the server confirmed the subscription (or restored it on a resume). */
  onReady?: () => void;
}

/**
 * Subscribes to `topic` + `filter` while the component is mounted and calls
 * `handler(payload, meta)` for each message of that subscription. Releases only
 * its own reference on unmount (identical subscriptions share one on the wire).
 * The filter is followed by value: a new object with the same content does not
 * resubscribe. The handler may change on every render without resubscribing.
 *
 * @example
 * useATPSubscription('logs', { suite_execution_id: 123, level: 'error' }, (entry) => toast(entry.message));
 */
export function useATPSubscription<T extends TopicName>(
  topic: T,
  filter: TopicFilter<T> | undefined,
  handler: SubscriptionHandler<T>,
  options?: SubscriptionOptions,
): void {
  const client = useATPWebSocketClient();
  const latest = useRef({ handler, options });
  useEffect(() => {
    latest.current = { handler, options };
  });
  const key = canonicalSubscriptionKey(topic, filter);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the key changes exactly when topic or filter content does.
  const subscription = useMemo(() => ({ topic, filter }), [key]);
  const enabled = options?.enabled ?? true;
  useEffect(() => {
    if (!enabled) return;
    // Held through a signal: only this component's cleanup releases it, never `unsubscribe(topic)`.
    const owner = new AbortController();
    const { from, onError } = latest.current.options ?? {};
    const handle = client.subscribe(subscription.topic, subscription.filter, { from, signal: owner.signal });
    // Batched by the client (one call per frame): the handlers' state updates of one batch make one render.
    // Batched by the client (one call per frame): the handlers' state updates of one batch make one render.
    handle.on('batch', (batch) => {
      for (const { message, meta } of batch)
        latest.current.handler(message.payload as TopicPayload<T>, meta as MessageMeta<TopicMessageType<T>>);
    });
    handle.on('error', (error) => (latest.current.options?.onError ?? onError)?.(error));
    handle.ready.then(
      () => owner.signal.aborted || latest.current.options?.onReady?.(),
      () => {},
    );
    return () => owner.abort();
  }, [client, subscription, enabled]);
}

/**
 * The newest payload of a subscription (`undefined` until one arrives, and again
 * after the topic or filter changes). Re-renders once per message of this
 * subscription only.
 *
 * @example
 * const progress = useLatest('suite:progress', { suite_execution_id: 123 });
 * return <progress max={100} value={progress?.progress_percent ?? 0} />;
 */
export function useLatest<T extends TopicName>(
  topic: T,
  filter?: TopicFilter<T>,
  options?: SubscriptionOptions,
): TopicPayload<T> | undefined {
  const key = canonicalSubscriptionKey(topic, filter);
  const [latest, setLatest] = useState<{ key: string; payload: TopicPayload<T> }>();
  useATPSubscription<T>(topic, filter, (payload) => setLatest({ key, payload }), options);
  return latest?.key === key ? latest.payload : undefined;
}

/** Options of {@link useMessageList}. */
export interface MessageListOptions extends SubscriptionOptions {
  /** Most payloads kept; older ones are dropped. @default 100 */
  max?: number;
  /**
   * When the list starts over: `'epoch'` when the server's stream changed (it restarted and lost
   * its history: old and new runs must not mix), `'gap'` also on any `sequence_gap` of the
   * client (messages were missed), `'never'` to keep everything. @default 'epoch'
   */
  resetOn?: 'epoch' | 'gap' | 'never';
}

const EMPTY: readonly never[] = Object.freeze([]);

type ListState<P> = { key: string; epoch: string | undefined; items: readonly P[] };

/**
 * The last `max` payloads of a subscription, oldest first: a log tail. Emptied when the
 * topic or filter changes and, by default, when the server's stream changes epoch (see
 * `resetOn`), so items of a lost history never show as if they were current.
 * Re-renders once per message of this subscription.
 *
 * @example
 * const logs = useMessageList('logs', { suite_execution_id: 123 }, { max: 200, from: 'start' });
 * return <pre>{logs.map((entry) => `${entry.level} ${entry.message}`).join('\n')}</pre>;
 */
export function useMessageList<T extends TopicName>(
  topic: T,
  filter?: TopicFilter<T>,
  options: MessageListOptions = {},
): readonly TopicPayload<T>[] {
  const client = useATPWebSocketClient();
  const key = canonicalSubscriptionKey(topic, filter);
  const max = Math.max(1, options.max ?? 100);
  const resetOn = options.resetOn ?? 'epoch';
  const [list, setList] = useState<ListState<TopicPayload<T>>>();
  useEffect(() => {
    if (resetOn === 'never') return;
    return client.on('sequence_gap', (gap) => {
      if (resetOn === 'gap' || gap.reason === 'epoch_changed')
        setList((previous) => (previous?.items.length ? { ...previous, items: EMPTY } : previous));
    });
  }, [client, resetOn]);
  useATPSubscription<T>(
    topic,
    filter,
    (payload, meta) =>
      setList((previous) => {
        const same = previous?.key === key && (resetOn === 'never' || previous.epoch === meta.epoch);
        const items = same ? previous.items : EMPTY;
        return {
          key,
          epoch: meta.epoch,
          items: [...items.slice(Math.max(0, items.length + 1 - max)), payload],
        };
      }),
    options,
  );
  return list?.key === key ? list.items : EMPTY;
}
