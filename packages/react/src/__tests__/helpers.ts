import { Disposer } from '@atp/test-utils';
import type { DataMessage } from '@atp/ws-protocol';
import { type ATPWebSocketServer, createATPWebSocketServer } from '@atp/ws-server';
import { cleanup } from '@testing-library/react';
import { WebSocket } from 'ws';
import { afterEach, beforeAll } from 'vitest';
import type { ATPWebSocketOptions } from '../index.js';

export const disposer = new Disposer();

beforeAll(() => {
  // Messages arrive from a real socket, outside act(): let React schedule them as in
  // a browser; waitFor/findBy observe the result. render() still wraps itself in act().
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;
});

afterEach(async () => {
  cleanup();
  await disposer.run();
});

/** Starts a hub on `port` (0: any free one), closed after the test. */
export async function startHub(port = 0): Promise<{ hub: ATPWebSocketServer; port: number; url: string }> {
  const hub = createATPWebSocketServer({ port });
  disposer.add(() => hub.close());
  await hub.ready;
  const actual = hub.address()?.port ?? 0;
  return { hub, port: actual, url: `ws://127.0.0.1:${actual}/api/ws/updates` };
}

type Frame = { type: string; payload?: { topic?: string; filter?: unknown } };

/** Every frame a test's clients sent and received, parsed, and every socket they opened. */
export interface Wire {
  readonly sent: Frame[];
  readonly received: Frame[];
  readonly sockets: WebSocket[];
  /** The sent frames of one type. */
  of(type: string): Frame[];
  /** The payloads of the `subscribed` confirmations received. */
  confirmed(): Frame['payload'][];
}

/**
 * Client options for the tests: `ws` as the WebSocket (Node 20 has no global one),
 * fast retries, and a record of what went over the wire, without a raw test client.
 */
export function clientOptions(url: string): { options: ATPWebSocketOptions; wire: Wire } {
  const sent: Frame[] = [];
  const received: Frame[] = [];
  const sockets: WebSocket[] = [];
  class RecordingWebSocket extends WebSocket {
    constructor(address: string) {
      super(address);
      sockets.push(this);
      this.on('message', (data) => received.push(JSON.parse(String(data))));
      disposer.add(() => this.terminate());
    }
    override send(data: unknown, ...rest: unknown[]): void {
      sent.push(JSON.parse(String(data)));
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  const wire: Wire = {
    sent,
    received,
    sockets,
    of: (type) => sent.filter((frame) => frame.type === type),
    confirmed: () => received.filter((frame) => frame.type === 'subscribed').map((frame) => frame.payload),
  };
  return {
    options: { url, WebSocket: RecordingWebSocket, retryDelay: () => 20, pingInterval: 0 },
    wire,
  };
}

export function progress(suite: number, percent: number, test = 1): DataMessage {
  return {
    type: 'test_progress',
    payload: {
      suite_execution_id: suite,
      test_execution_id: test,
      test_id: `test-${test}`,
      status: 'running',
      progress_percent: percent,
    },
  };
}

export function log(suite: number, message: string): DataMessage {
  return {
    type: 'log_entry',
    payload: { suite_execution_id: suite, level: 'info', message, timestamp: '2024-01-15T10:30:00Z' },
  };
}
