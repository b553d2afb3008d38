import type { DataMessage } from '@atp/ws-protocol';
import { Disposer, RawTestClient, type RawClientOptions } from '@atp/test-utils';
import { afterEach } from 'vitest';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
} from '../index.js';

export const disposer = new Disposer();
afterEach(() => disposer.run());

/** Starts a hub on port 0, closed after the test. */
export async function startHub(
  options: ATPWebSocketServerOptions = {},
): Promise<{ hub: ATPWebSocketServer; url: string }> {
  const hub = createATPWebSocketServer({ port: 0, ...options });
  disposer.add(() => hub.close());
  await hub.ready;
  const port = hub.address()?.port;
  return { hub, url: `ws://127.0.0.1:${port}/api/ws/updates` };
}

/** Connects a raw client (waits for `connected`), closed after the test. */
export async function connect(url: string, query = '', options?: RawClientOptions): Promise<RawTestClient> {
  const client = await RawTestClient.connect(query ? `${url}?${query}` : url, options);
  disposer.add(() => client.close());
  return client;
}

export function progress(suite: number, test: number, percent: number): DataMessage {
  return {
    type: 'test_progress',
    payload: {
      suite_execution_id: suite,
      test_execution_id: test,
      test_id: `test-${test}`,
      test_name: `Test ${test}`,
      status: 'running',
      progress_percent: percent,
    },
  };
}

export function completed(suite: number, test: number): DataMessage {
  return {
    type: 'test_completed',
    payload: {
      suite_execution_id: suite,
      test_execution_id: test,
      test_id: `test-${test}`,
      success: true,
      score: 0.9,
    },
  };
}

export function toolCall(suite: number, eventType = 'tool_call'): DataMessage {
  return {
    type: 'event',
    payload: {
      suite_execution_id: suite,
      event_type: eventType,
      timestamp: '2024-01-15T10:30:05Z',
      payload: { tool: 'search' },
    },
  };
}

export function log(
  suite: number,
  level: 'debug' | 'info' | 'warning' | 'error' | 'critical',
  message: string,
): DataMessage {
  return {
    type: 'log_entry',
    payload: { suite_execution_id: suite, level, message, timestamp: '2024-01-15T10:30:00Z' },
  };
}
