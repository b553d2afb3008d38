/**
 * Connection state of an {@link ATPWebSocket}:
 *
 * - `idle`: created, `connect()` not called yet;
 * - `connecting`: a socket is being opened (or is open and waits for `connected`);
 * - `open`: the server said `connected`; messages flow;
 * - `reconnecting`: the connection was lost and a retry is scheduled;
 * - `closed`: `disconnect()` was called, or the client gave up (refusal, fatal close
 *   code, `maxReconnectAttempts`); `connect()` starts a fresh session.
 */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Payload of the `state` event: the state left and the state entered. */
export interface StateChange {
  readonly from: ConnectionState;
  readonly to: ConnectionState;
}

const transitions: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['open', 'reconnecting', 'closed'],
  open: ['reconnecting', 'closed'],
  reconnecting: ['connecting', 'closed'],
  closed: ['connecting'],
};

/**
 * Whether the client may go from one state to another; every state change of
 * the client goes through one function that checks this.
 *
 * @example
 * canTransition('open', 'reconnecting'); // true
 * canTransition('idle', 'open'); // false: `connected` only arrives while connecting
 */
export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return transitions[from].includes(to);
}

/** A promise with its settlers, for `connect()`: marked handled so that nobody awaiting it is not an error. */
export interface Waiter {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

/** Creates a {@link Waiter}; its rejection never becomes an unhandled rejection by itself. */
export function createWaiter(): Waiter {
  const waiter = {} as { -readonly [K in keyof Waiter]: Waiter[K] };
  waiter.promise = new Promise<void>((resolve, reject) => {
    waiter.resolve = resolve;
    waiter.reject = reject;
  });
  waiter.promise.catch(() => {});
  return waiter;
}
