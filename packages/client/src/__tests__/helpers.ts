import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Disposer, withTimeout } from '@atp/test-utils';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
} from '@atp/ws-server';
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import {
  ATPWebSocket,
  type ATPWebSocketEvents,
  type ATPWebSocketOptions,
  type MessageMeta,
  type SequenceGapEvent,
} from '../index.js';

export { MemoryBroker } from '@atp/ws-server';

export const disposer = new Disposer();
afterEach(() => disposer.run());

/** A hub attached to an HTTP server of the test's own, so the test can cut TCP connections and restart it. */
export interface TestHub {
  hub: ATPWebSocketServer;
  server: Server;
  port: number;
  url: string;
  /** Destroys every TCP connection, as a crash or a network failure would (the client sees 1006). */
  cutConnections(): void;
  /** Closes the hub (clients get 1001) and the HTTP server, freeing the port. */
  stop(): Promise<void>;
}

/** Starts a hub on 127.0.0.1 (port 0 unless given), stopped after the test. */
export async function startHub(options: ATPWebSocketServerOptions = {}, port = 0): Promise<TestHub> {
  const server = createServer((_request, response) => response.writeHead(404).end());
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const hub = createATPWebSocketServer({ server, ...options });
  await hub.ready;
  const actualPort = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return stopped;
  };
  disposer.add(stop);
  return {
    hub,
    server,
    port: actualPort,
    url: `ws://127.0.0.1:${actualPort}/api/ws/updates`,
    cutConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    stop,
  };
}

/** An ATPWebSocket on Node with `ws`, fast retries, disconnected after the test. */
export function newClient(url: string, options: ATPWebSocketOptions = {}): ATPWebSocket {
  const ws = new ATPWebSocket({ url, WebSocket, retryDelay: () => 20, ...options });
  disposer.add(() => ws.disconnect());
  return ws;
}

/** Resolves with the arguments of the next `event` of `ws` (rejects after `ms`). */
export function next<E extends keyof ATPWebSocketEvents>(
  ws: ATPWebSocket,
  event: E,
  ms = 5000,
): Promise<Parameters<ATPWebSocketEvents[E]>> {
  let off = () => {};
  const promise = new Promise<Parameters<ATPWebSocketEvents[E]>>((resolve) => {
    off = ws.on(event, ((...args: Parameters<ATPWebSocketEvents[E]>) => {
      off();
      resolve(args);
    }) as ATPWebSocketEvents[E]);
  });
  return withTimeout(promise, ms, `event ${event}`).finally(off);
}

/** Resolves once the server confirmed `count` more subscriptions of `ws`. */
export function confirmed(ws: ATPWebSocket, count = 1, ms = 5000): Promise<void> {
  let seen = 0;
  let off = () => {};
  const promise = new Promise<void>((resolve) => {
    off = ws.on('subscribed', () => {
      seen += 1;
      if (seen === count) resolve();
    });
  });
  return withTimeout(promise, ms, `${count} subscribed`).finally(() => off());
}

/** Polls `condition` every 5 ms until it holds (rejects after `ms` naming `what`). */
export async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Everything a client delivered: data messages with their meta, gaps, and disconnects. */
export function record(ws: ATPWebSocket) {
  const data: Array<{ type: string; payload: Record<string, unknown>; meta: MessageMeta }> = [];
  const gaps: SequenceGapEvent[] = [];
  const disconnects: Array<{ code: number; reason: string }> = [];
  ws.on('message', (message, meta) => data.push({ type: message.type, payload: message.payload, meta }));
  ws.on('sequence_gap', (gap) => gaps.push(gap));
  ws.on('disconnect', ({ code, reason }) => disconnects.push({ code, reason }));
  return {
    data,
    gaps,
    disconnects,
    sequences: () => data.map((d) => d.meta.sequence),
    waitForData: (count: number, ms = 5000) =>
      until(() => data.length >= count, `${count} data messages (have ${data.length})`, ms),
  };
}

/** A valid `test_progress` message; `n` goes into test_execution_id so order can be checked. */
export function progress(n: number, suite = 123) {
  return {
    type: 'test_progress' as const,
    payload: {
      suite_execution_id: suite,
      test_execution_id: n,
      test_id: `test-${n}`,
      test_name: `Test ${n}`,
      status: 'running' as const,
      progress_percent: 50,
    },
  };
}

/** Publishes `progress(from) … progress(to)` in one call. */
export function publishRange(hub: ATPWebSocketServer, from: number, to: number, suite = 123): Promise<void> {
  return hub.publish(Array.from({ length: to - from + 1 }, (_, i) => progress(from + i, suite)));
}

/** Asserts that `sequences` are consecutive from `first`. */
export function consecutive(sequences: number[], first = 1): boolean {
  return sequences.every((s, i) => s === first + i);
}

/** A valid `log_entry` message of `suite`. */
export function log(suite: number, message: string) {
  return {
    type: 'log_entry' as const,
    payload: {
      suite_execution_id: suite,
      level: 'info' as const,
      message,
      timestamp: '2024-01-15T10:30:00Z',
    },
  };
}
