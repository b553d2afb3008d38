import type { ATPWebSocket, ConnectionState } from '@atp/ws-client';
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import { useATPWebSocketClient } from './provider.js';

/** What {@link useATPWebSocket} returns; the functions keep their identity for the client's life. */
export interface UseATPWebSocketResult {
  /** The client itself, for what the shortcuts below do not cover. */
  readonly client: ATPWebSocket;
  /** The client's connection state (`'idle'` during server rendering). */
  readonly status: ConnectionState;
  /** `status === 'open'`. */
  readonly isConnected: boolean;
  /** {@link ATPWebSocket.subscribe}: returns a function that releases this reference only. */
  readonly subscribe: ATPWebSocket['subscribe'];
  /** {@link ATPWebSocket.unsubscribe}. */
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
  const methods = useMemo(
    () => ({
      subscribe: client.subscribe.bind(client),
      unsubscribe: client.unsubscribe.bind(client),
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
