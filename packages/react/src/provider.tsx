import { ATPWebSocket, type ATPWebSocketOptions } from '@atp/ws-client';
import { createContext, type ReactElement, type ReactNode, useContext, useEffect, useState } from 'react';

const ATPWebSocketContext = createContext<ATPWebSocket | null>(null);

/** Props of {@link ATPWebSocketProvider}: a client of your own, or options for one the provider creates. */
export type ATPWebSocketProviderProps = { children?: ReactNode } & (
  | {
      /** A client you created; connected on mount, never disconnected by the provider. */
      client: ATPWebSocket;
      options?: never;
    }
  | {
      client?: never;
      /** Options of the client the provider creates on its first render (later changes are ignored). */
      options?: ATPWebSocketOptions;
    }
);

/**
 * Gives its subtree one {@link ATPWebSocket}. It connects on mount; a client the
 * provider created itself is disconnected on unmount (one given as `client` is left
 * alone). Nothing connects during server rendering, since effects do not run there.
 *
 * @example
 * <ATPWebSocketProvider options={{ url: 'wss://atp.example.com/api/ws/updates' }}>
 *   <TestProgress suiteExecutionId={123} />
 * </ATPWebSocketProvider>
 */
export function ATPWebSocketProvider({ client, options, children }: ATPWebSocketProviderProps): ReactElement {
  // Constructing a client is inert (no socket, no `window`), so an unused one costs nothing.
  const [own] = useState(() => new ATPWebSocket(options));
  const value = client ?? own;
  useEffect(() => {
    connectIfIdle(value);
    // StrictMode's mount-unmount-mount closes the first socket before it opens: one socket remains.
    return value === own ? () => value.disconnect() : undefined;
  }, [value, own]);
  return <ATPWebSocketContext.Provider value={value}>{children}</ATPWebSocketContext.Provider>;
}

/** Starts a client that is not connected; one already connecting or reconnecting keeps its own schedule. */
function connectIfIdle(client: ATPWebSocket): void {
  if (client.state === 'idle' || client.state === 'closed') void client.connect();
}

let defaultClient: ATPWebSocket | undefined;

/**
 * The client the hooks use outside any provider: one per page, created on first
 * use with the URL auto-detected from `location` (at connect time, not at render).
 */
export function getDefaultATPWebSocket(): ATPWebSocket {
  defaultClient ??= new ATPWebSocket();
  return defaultClient;
}

/**
 * The client of the nearest provider, else the shared default client, which it
 * connects after mount (and never disconnects: other components may share it).
 */
export function useATPWebSocketClient(): ATPWebSocket {
  const provided = useContext(ATPWebSocketContext);
  const client = provided ?? getDefaultATPWebSocket();
  useEffect(() => {
    if (!provided) connectIfIdle(client);
  }, [provided, client]);
  return client;
}
