import type { DataMessage } from '@atp/ws-protocol';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Disposer, type RawClientOptions, RawSseTestClient, RawTestClient } from '@atp/test-utils';
import express from 'express';
import { afterEach } from 'vitest';
import { createATPFallbackRouter } from '../express.js';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
} from '../index.js';

export const disposer = new Disposer();
afterEach(() => disposer.run());

/**
 * The transport the protocol tests run over: `websocket`, or `sse` (the fallback: a Server-Sent
 * Events stream and POSTs) in the vitest project that sets `ATP_TEST_TRANSPORT=sse`.
 */
export const transport: 'websocket' | 'sse' = process.env.ATP_TEST_TRANSPORT === 'sse' ? 'sse' : 'websocket';

/** A raw client of either transport. */
export type TestClient = RawTestClient | RawSseTestClient;

/**
 * Starts a hub on port 0, closed after the test. Over `sse`, the hub is attached to an Express app
 * serving the fallback router, and `url` is still its WebSocket URL (the SSE client derives its own).
 */
export async function startHub(
  options: ATPWebSocketServerOptions = {},
): Promise<{ hub: ATPWebSocketServer; url: string }> {
  if (transport === 'sse' && options.server === undefined && options.port === undefined) {
    const { hub, url } = await startFallbackHub(options);
    return { hub, url };
  }
  const hub = createATPWebSocketServer({ port: 0, ...options });
  disposer.add(() => hub.close());
  await hub.ready;
  const port = hub.address()?.port;
  return { hub, url: `ws://127.0.0.1:${port}/api/ws/updates` };
}

/**
 * A hub attached to an Express app that serves the fallback router (POST bodies up to
 * `maxBodyBytes`, the router's default when left out), closed after the test.
 */
export async function startFallbackHub(options: ATPWebSocketServerOptions = {}, maxBodyBytes?: number) {
  const app = express();
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const hub = createATPWebSocketServer({ ...options, server });
  app.use(createATPFallbackRouter(hub, maxBodyBytes === undefined ? {} : { maxBodyBytes }));
  disposer.add(async () => {
    await hub.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  await hub.ready;
  const port = (server.address() as AddressInfo).port;
  return { hub, url: `ws://127.0.0.1:${port}/api/ws/updates`, base: `http://127.0.0.1:${port}` };
}

/** Connects a raw WebSocket client (waits for `connected`), closed after the test. */
export async function connect(url: string, query = '', options?: RawClientOptions): Promise<RawTestClient> {
  const client = await RawTestClient.connect(query ? `${url}?${query}` : url, options);
  disposer.add(() => client.close());
  return client;
}

/** Connects a raw client of {@link transport} (waits for `connected`), closed after the test. */
export async function connectOver(url: string, query = '', options?: RawClientOptions): Promise<TestClient> {
  const target = query ? `${url}?${query}` : url;
  const client =
    transport === 'sse'
      ? await RawSseTestClient.connect(target, options)
      : await RawTestClient.connect(target, options);
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

/**
 * What a reader for which a test's progress makes it known, and a delta changes a test already
 * known, holds after `messages`: each test's merged progress payloads and delta changes.
 */
export function testsAsCreated(messages: readonly DataMessage[]): Map<number, Record<string, unknown>> {
  const tests = new Map<number, Record<string, unknown>>();
  for (const m of messages) {
    if (m.type === 'test_progress')
      tests.set(m.payload.test_execution_id, { ...tests.get(m.payload.test_execution_id), ...m.payload });
    if (m.type === 'delta_update') {
      const test = tests.get(Number(m.payload.resource_id));
      if (test) Object.assign(test, m.payload.changes);
    }
  }
  return tests;
}
