import type {
  DataMessageType,
  DataPayload,
  Filter,
  MessageMeta,
  ReplayFrom,
  TopicName,
} from '@atp/ws-client';
import { canonicalSubscriptionKey, matchesSubscription, type TOPICS } from '@atp/ws-protocol';
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
  filter: Filter | undefined,
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
  useEffect(() => {
    const off = client.on('message', (message, meta) => {
      if (matchesSubscription(message, subscription)) {
        latest.current.handler(message.payload as TopicPayload<T>, meta as MessageMeta<TopicMessageType<T>>);
      }
    });
    const from = latest.current.options?.from;
    const release = client.subscribe(subscription.topic, subscription.filter, from ? { from } : {});
    return () => {
      off();
      release();
    };
  }, [client, subscription]);
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
  filter?: Filter,
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
}

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * The last `max` payloads of a subscription, oldest first (emptied when the topic
 * or filter changes): a log tail. Re-renders once per message of this subscription.
 *
 * @example
 * const logs = useMessageList('logs', { suite_execution_id: 123 }, { max: 200, from: 'start' });
 * return <pre>{logs.map((entry) => `${entry.level} ${entry.message}`).join('\n')}</pre>;
 */
export function useMessageList<T extends TopicName>(
  topic: T,
  filter?: Filter,
  options: MessageListOptions = {},
): readonly TopicPayload<T>[] {
  const key = canonicalSubscriptionKey(topic, filter);
  const max = Math.max(1, options.max ?? 100);
  const [list, setList] = useState<{ key: string; items: readonly TopicPayload<T>[] }>();
  useATPSubscription<T>(
    topic,
    filter,
    (payload) =>
      setList((previous) => {
        const items = previous?.key === key ? previous.items : EMPTY;
        return { key, items: [...items.slice(Math.max(0, items.length + 1 - max)), payload] };
      }),
    options,
  );
  return list?.key === key ? list.items : EMPTY;
}
