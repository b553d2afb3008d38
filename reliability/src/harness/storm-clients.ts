import { ATPWebSocket, type SequenceGapEvent, type WebSocketConstructor } from '@atp/ws-client';
import { WebSocket } from 'ws';
import { disposer, LOCAL_ADDRESSES } from './common.js';

/** `ws`'s WebSocket bound to one local address, in the shape ATPWebSocket takes. */
export function webSocketFrom(localAddress: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { localAddress, perMessageDeflate: false });
    }
  } as unknown as WebSocketConstructor;
}

const constructors = LOCAL_ADDRESSES.map(webSocketFrom);

/** One real client of the storm and what it went through. */
export interface StormClient {
  readonly ws: ATPWebSocket;
  readonly suite: number;
  /** performance.now() of every `connect` event, and whether it resumed. */
  readonly connects: { at: number; resumed: boolean }[];
  readonly gaps: SequenceGapEvent[];
  /** `[sequence, message text]` of every log delivered. */
  readonly received: [number, string][];
}

/**
 * Creates `count` ATPWebSocket clients (real client, `ws` sockets spread over
 * local addresses), each subscribed to the logs of one of `suites` suites.
 */
export function stormClients(
  count: number,
  url: string,
  suites: number,
  options: { reconnectInterval: number; jitter: number | 'full' },
): StormClient[] {
  return Array.from({ length: count }, (_, i) => {
    const ws = new ATPWebSocket({
      url,
      WebSocket: constructors[i % constructors.length],
      reconnectInterval: options.reconnectInterval,
      maxReconnectInterval: 10_000,
      jitter: options.jitter,
      // The server's ping frames keep the connection checked; no application pings in a storm.
      pingInterval: 0,
    });
    disposer.add(() => ws.disconnect());
    const client: StormClient = { ws, suite: (i % suites) + 1, connects: [], gaps: [], received: [] };
    ws.on('connect', ({ resumed }) => client.connects.push({ at: performance.now(), resumed }));
    ws.on('sequence_gap', (gap) => client.gaps.push(gap));
    ws.on('log_entry', (payload, meta) => client.received.push([meta.sequence, payload.message]));
    ws.subscribe('logs', { suite_execution_id: client.suite });
    return client;
  });
}

/** Connects the clients in waves, so that the first connect is not itself a storm. */
export async function connectAll(clients: readonly StormClient[], wave = 250): Promise<void> {
  for (let i = 0; i < clients.length; i += wave) {
    await Promise.all(clients.slice(i, i + wave).map((client) => client.ws.connect()));
  }
}

/** How reconnect times (ms after the restart) spread: percentiles, the busiest 100 ms bucket, the busiest 300 ms span. */
export function spreadOf(times: readonly number[]): {
  p10: number;
  p50: number;
  p90: number;
  busiest100ms: number;
  busiest300ms: number;
} {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
  const buckets = new Map<number, number>();
  for (const time of sorted)
    buckets.set(Math.floor(time / 100), (buckets.get(Math.floor(time / 100)) ?? 0) + 1);
  let most = 0;
  for (let start = 0, end = 0; start < sorted.length; start++) {
    while (end < sorted.length && (sorted[end] as number) - (sorted[start] as number) <= 300) end++;
    most = Math.max(most, end - start);
  }
  return {
    p10: at(0.1),
    p50: at(0.5),
    p90: at(0.9),
    busiest100ms: Math.max(...buckets.values()) / times.length,
    busiest300ms: most / times.length,
  };
}
