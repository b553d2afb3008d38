import type { ATPWebSocketError, TopicFilter, TopicName } from '@atp/ws-client';
import { canonicalSubscriptionKey } from '@atp/ws-protocol';
import { useEffect, useMemo, useState } from 'react';
import { useATPWebSocketClient } from './provider.js';
import { useConnectionState } from './use-atp-websocket.js';
import { type SubscriptionOptions, type TopicPayload, useATPSubscription } from './use-subscription.js';

/**
 * Where a subscription stands: `connecting` (no connection yet, or it was lost), `subscribing`
 * (waiting for the server to confirm it), `live`, `resyncing` (messages were missed: after a
 * `sequence_gap`, until the next message arrives) or `error` (the server refused it).
 */
export type SubscriptionStatus = 'connecting' | 'subscribing' | 'live' | 'resyncing' | 'error';

/** Options of {@link useSubscriptionState}. */
export interface SubscriptionStateOptions<P, S> extends Omit<SubscriptionOptions, 'onError' | 'onReady'> {
  /** Derives `data` from the newest payload; keep it stable (outside the component, or memoised). */
  select?: (payload: P) => S;
}

/** What {@link useSubscriptionState} returns. */
export interface SubscriptionState<S> {
  /** The newest payload (through `select`), `undefined` until one arrives. */
  readonly data: S | undefined;
  /** The server's refusal, when `status` is `'error'`. */
  readonly error: ATPWebSocketError | undefined;
  readonly status: SubscriptionStatus;
}

type Tracked<P> = { key: string; payload?: P; error?: ATPWebSocketError; ready?: boolean; stale?: boolean };

/**
 * The newest payload of a subscription with query-style state `{ data, error, status }`, and
 * the `enabled` and `select` options. Renders once per batch of messages, like `useLatest`.
 *
 * @example
 * const { data: percent, status } = useSubscriptionState('suite:progress', { suite_execution_id: 123 }, {
 *   select: (progress) => progress.progress_percent,
 * });
 * if (status === 'error') return <p>Not allowed</p>;
 * return <progress max={100} value={percent ?? 0} />;
 */
export function useSubscriptionState<T extends TopicName, S = TopicPayload<T>>(
  topic: T,
  filter?: TopicFilter<T>,
  options: SubscriptionStateOptions<TopicPayload<T>, S> = {},
): SubscriptionState<S> {
  const client = useATPWebSocketClient();
  const connection = useConnectionState(client);
  const key = canonicalSubscriptionKey(topic, filter);
  const [tracked, setTracked] = useState<Tracked<TopicPayload<T>>>({ key });
  const update = (change: Omit<Tracked<TopicPayload<T>>, 'key'>) =>
    setTracked((previous) => ({ ...(previous.key === key ? previous : { key }), ...change }));
  useATPSubscription<T>(topic, filter, (payload) => update({ payload, stale: false }), {
    ...options,
    onError: (error) => update({ error }),
    onReady: () => update({ ready: true }),
  });
  const enabled = options.enabled ?? true;
  // biome-ignore lint/correctness/useExhaustiveDependencies: `update` only closes over the key.
  useEffect(() => {
    if (enabled) return client.on('sequence_gap', () => update({ stale: true }));
  }, [client, key, enabled]);
  const current = tracked.key === key ? tracked : { key };
  const { payload, error } = current as Tracked<TopicPayload<T>>;
  const select = options.select;
  const data = useMemo(
    () => (payload === undefined ? undefined : select ? select(payload) : (payload as S)),
    [payload, select],
  );
  let status: SubscriptionStatus = 'live';
  if (error) status = 'error';
  else if (connection !== 'open') status = 'connecting';
  else if (!(current as Tracked<TopicPayload<T>>).ready) status = 'subscribing';
  else if ((current as Tracked<TopicPayload<T>>).stale) status = 'resyncing';
  return { data, error, status };
}
