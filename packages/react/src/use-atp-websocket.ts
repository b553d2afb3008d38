import type {
  ATPWebSocket,
  ConnectionState,
  Filter,
  SubscribeOptions,
  Subscription,
  TopicName,
} from '@atp/ws-client';
import { canonicalSubscriptionKey } from '@atp/ws-protocol';
import { useCallback, useEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import { useATPWebSocketClient } from './provider.js';

/** What {@link useATPWebSocket} returns; the functions keep their identity for the client's life. */
export interface UseATPWebSocketResult {
  /** The client itself, for what the shortcuts below do not cover. */
  readonly client: ATPWebSocket;
  /** The client's connection state (`'idle'` during server rendering). */
  readonly status: ConnectionState;
  /** `status === 'open'`. */
  readonly isConnected: boolean;
  /**
   * {@link ATPWebSocket.subscribe}, owned by this component: released when it unmounts (or by
   * the returned function), and taken once per subscription however often an effect calls it.
   */
  readonly subscribe: ATPWebSocket['subscribe'];
  /** Releases what this component subscribed to `topic` (or exactly `topic` + `filter`). */
  readonly unsubscribe: ATPWebSocket['unsubscribe'];
  /** {@link ATPWebSocket.on}: returns a function that removes the handler. */
  readonly on: ATPWebSocket['on'];
  /** {@link ATPWebSocket.off}. */
  readonly off: ATPWebSocket['off'];
}

const serverState = (): ConnectionState => 'idle';

/**
 * The client's connection state, read through `useSyncExternalStore` from the
 * client's own `state` and its `state` event: re-renders on state changes only.
 */
export function useConnectionState(client: ATPWebSocket): ConnectionState {
  const subscribe = useCallback((listener: () => void) => client.on('state', listener), [client]);
  const getState = useCallback(() => client.state, [client]);
  return useSyncExternalStore(subscribe, getState, serverState);
}

/**
 * The client of the nearest {@link ATPWebSocketProvider} (else the shared default
 * client, connected on first use) with its state and stable shortcuts, safe in
 * effect dependency arrays. Re-renders when the connection state changes, never
 * per message.
 *
 * @example
 * function TestProgress({ suiteExecutionId }) {
 *   const { isConnected, subscribe, on } = useATPWebSocket();
 *   const [progress, setProgress] = React.useState(0);
 *   React.useEffect(() => {
 *     const cleanup = on('test_progress', (data) => {
 *       if (data.suite_execution_id === suiteExecutionId) setProgress(data.progress_percent);
 *     });
 *     subscribe('test:progress', { suite_execution_id: suiteExecutionId });
 *     return cleanup;
 *   }, [suiteExecutionId, on, subscribe]);
 *   return <p>{isConnected ? 'Connected' : 'Offline'}: {progress}%</p>;
 * }
 */
export function useATPWebSocket(): UseATPWebSocketResult {
  const client = useATPWebSocketClient();
  const status = useConnectionState(client);
  // What this component subscribed, by subscription: one reference each, all released on unmount.
  const owned = useRef(new Map<string, Subscription>());
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new client means the held subscriptions belong to the old one.
  useEffect(() => {
    const held = owned.current;
    return () => {
      for (const subscription of held.values()) subscription();
      held.clear();
    };
  }, [client]);
  const methods = useMemo(
    () => ({
      subscribe: ((topic: TopicName, filter?: Filter, options: SubscribeOptions = {}) => {
        const key = canonicalSubscriptionKey(topic, filter);
        const held = owned.current.get(key);
        if (held && !options.from) return held;
        held?.();
        const subscription = client.subscribe(topic, filter, options);
        owned.current.set(key, subscription);
        return subscription;
      }) as ATPWebSocket['subscribe'],
      unsubscribe: (topic: string, filter?: Filter) => {
        const key = filter === undefined ? undefined : canonicalSubscriptionKey(topic, filter);
        for (const [held, subscription] of owned.current) {
          if (subscription.topic !== topic || (key !== undefined && held !== key)) continue;
          subscription();
          owned.current.delete(held);
        }
      },
      on: client.on.bind(client),
      off: client.off.bind(client),
    }),
    [client],
  );
  return useMemo(
    () => ({ client, status, isConnected: status === 'open', ...methods }),
    [client, status, methods],
  );
}
