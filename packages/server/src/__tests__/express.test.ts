import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { DataMessageSchema, DeliveredDataMessageSchema, WS_PATH } from '@atp/ws-protocol';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { createATPRouter, type RouterHub } from '../express.js';
import { connect, disposer, progress, publish, startApp, SwitchableBroker } from './express-helpers.js';

const ADMIN = 'admin-secret-token';
const PUBLISHER = 'publish-secret-token';

describe('GET /api/ws/info', () => {
  it('answers the URL a client outside would use, and the heartbeat in seconds', async () => {
    const { base, server } = await startApp();
    const response = await fetch(`${base}/api/ws/info`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const port = (server.address() as { port: number }).port;
    expect(await response.json()).toEqual({
      url: `ws://127.0.0.1:${port}/api/ws/updates`,
      ping_interval: 30,
      ping_timeout: 10,
    });
  });

  it('answers wss:// behind a trusted TLS-terminating proxy and the configured heartbeat', async () => {
    const { base } = await startApp({}, { pingInterval: 20_000, pingTimeout: 5_000, trustProxy: 'loopback' });
    const response = await fetch(`${base}/api/ws/info`, {
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'atp.example.com' },
    });
    expect(await response.json()).toEqual({
      url: 'wss://atp.example.com/api/ws/updates',
      ping_interval: 20,
      ping_timeout: 5,
    });
  });
});

describe('GET /api/ws/clients', () => {
  it('answers 404 when no admin token is configured, even with a token', async () => {
    const { base } = await startApp({ publishToken: PUBLISHER });
    const response = await fetch(`${base}/api/ws/clients`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'not_found' });
  });

  it('answers 401 with a Bearer challenge without an Authorization header', async () => {
    const { base } = await startApp({ adminToken: ADMIN });
    const response = await fetch(`${base}/api/ws/clients`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    expect(await response.json()).toMatchObject({ error: 'unauthorized' });
  });

  it('answers 401 to a wrong token of the same length, of another length, and of another scheme', async () => {
    const { base } = await startApp({ adminToken: ADMIN, publishToken: PUBLISHER });
    const wrong = [
      `Bearer ${'x'.repeat(ADMIN.length)}`,
      'Bearer a',
      `Bearer ${'y'.repeat(100_00)}`,
      `Bearer ${ADMIN}x`,
      `Bearer ${ADMIN.slice(0, -1)}`,
      `Bearer ${PUBLISHER}`,
      `Basic ${Buffer.from(`user:${ADMIN}`).toString('base64')}`,
      ADMIN,
      'Bearer ',
    ];
    for (const authorization of wrong) {
      const response = await fetch(`${base}/api/ws/clients`, { headers: { authorization } });
      expect(response.status, authorization.slice(0, 40)).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    // The server is still there after all of them.
    const ok = await fetch(`${base}/api/ws/clients`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(ok.status).toBe(200);
  });

  it('lists connected clients with their subscriptions and the total', async () => {
    const { base, wsUrl } = await startApp({ adminToken: ADMIN });
    const client = await connect(wsUrl, 'client_id=watcher-1');
    await client.request('subscribe', { topic: 'test:progress', filter: { suite_execution_id: 1 } });
    await client.request('subscribe', { topic: 'logs' });
    await connect(wsUrl, 'client_id=watcher-2');
    const response = await fetch(`${base}/api/ws/clients`, {
      headers: { authorization: `bearer ${ADMIN}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { clients: Array<Record<string, unknown>>; total: number };
    expect(body.total).toBe(2);
    const byId = new Map(body.clients.map((c) => [c.client_id, c]));
    expect(byId.get('watcher-1')).toMatchObject({
      client_id: 'watcher-1',
      subscriptions: ['test:progress', 'logs'],
    });
    expect(byId.get('watcher-2')).toMatchObject({ subscriptions: [] });
    for (const info of body.clients) {
      expect(new Date(info.connected_at as string).toISOString()).toBe(info.connected_at);
      expect(new Date(info.last_activity as string).toISOString()).toBe(info.last_activity);
    }
  });
});

describe('GET /api/ws/metrics', () => {
  it('answers 404 when no admin token is configured', async () => {
    const { base } = await startApp();
    expect((await fetch(`${base}/api/ws/metrics`)).status).toBe(404);
  });

  it('answers 401 without or with a wrong admin token', async () => {
    const { base } = await startApp({ adminToken: ADMIN, publishToken: PUBLISHER });
    expect((await fetch(`${base}/api/ws/metrics`)).status).toBe(401);
    const wrong = await fetch(`${base}/api/ws/metrics`, {
      headers: { authorization: `Bearer ${PUBLISHER}` },
    });
    expect(wrong.status).toBe(401);
  });

  it('answers Prometheus text counting connections and published messages', async () => {
    const { base, wsUrl, hub } = await startApp({ adminToken: ADMIN });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    await hub.publish(progress(1, 1, 10));
    await client.waitForData(1);
    const response = await fetch(`${base}/api/ws/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(hub.metricsContentType);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^# HELP /m);
    expect(text).toMatch(/^atp_ws_connections 1$/m);
    expect(text).toMatch(/^atp_ws_published_total 1$/m);
    expect(text).toMatch(/^atp_ws_messages_out_total 1$/m);
    // Counted on the hot path as plain numbers: each scrape must add only what is new.
    await hub.publish(progress(1, 2, 10));
    await client.waitForData(2);
    const again = await hub.metrics();
    expect(again).toMatch(/^atp_ws_messages_out_total 2$/m);
    expect(again).toMatch(/^atp_ws_dropped_total 0$/m);
  });
});

describe('POST /api/ws/publish', () => {
  it('answers 404 when no publish token is configured, and publishes nothing', async () => {
    const { base, wsUrl } = await startApp({ adminToken: ADMIN });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const response = await publish(base, progress(1, 1, 10), { token: ADMIN });
    expect(response.status).toBe(404);
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(client.data()).toEqual([]);
  });

  it('answers 401 without or with a wrong publish token, and publishes nothing', async () => {
    const { base, wsUrl } = await startApp({ adminToken: ADMIN, publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const missing = await publish(base, progress(1, 1, 10));
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await publish(base, progress(1, 1, 20), { token: ADMIN })).status).toBe(401);
    expect((await publish(base, progress(1, 1, 30), { token: 'short' })).status).toBe(401);
    expect((await publish(base, progress(1, 1, 40), { token: 'z'.repeat(4096) })).status).toBe(401);
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(client.data()).toEqual([]);
  });

  it('answers 202 with the count and delivers the message to a WebSocket subscriber', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress', filter: { suite_execution_id: 123 } });
    const message = progress(123, 456, 50);
    const response = await publish(base, message, { token: PUBLISHER });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 1 });
    const [received] = await client.waitForData(1);
    expect(DeliveredDataMessageSchema.parse(received)).toMatchObject({ ...message, sequence: 1 });
  });

  it('publishes an array in order and answers how many were accepted', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const batch = [progress(1, 1, 10), progress(1, 1, 20), progress(2, 7, 30)];
    const response = await publish(base, batch, {
      token: PUBLISHER,
      contentType: 'application/json; charset=utf-8',
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 3 });
    const received = await client.waitForData(3);
    expect(received.map((m) => [m.sequence, m.payload.progress_percent])).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
  });

  it('answers 400 with the schema issues of an invalid message and publishes nothing', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const bad = progress(1, 1, 150);
    const response = await publish(base, bad, { token: PUBLISHER });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; message: string; issues: unknown[] };
    expect(body.error).toBe('invalid_message');
    expect(body.message).toContain('payload.progress_percent');
    expect(body.issues).toEqual([
      { index: 0, path: 'payload.progress_percent', message: expect.any(String) },
    ]);
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(client.data()).toEqual([]);
  });

  it('answers 400 (not a 503 to retry) to an event payload nested past MAX_JSON_DEPTH, however deep', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'events:*' });
    for (const depth of [33, 5_000, 100_000]) {
      const body = `{"type":"event","payload":{"suite_execution_id":1,"event_type":"x","timestamp":"2024-01-15T10:30:00Z","payload":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}}`;
      const response = await publish(base, body, { token: PUBLISHER });
      expect(response.status, `depth ${depth}`).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe('invalid_message');
    }
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(client.data()).toEqual([]);
  });

  it('refuses a whole batch when one message of it is invalid, naming its index', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const batch = [
      progress(1, 1, 10),
      progress(1, 1, 20),
      { type: 'test_progress', payload: { ...progress(1, 1, 30).payload, surprise: true } },
      { type: 'no_such_type', payload: {} },
      progress(1, 1, 40),
    ];
    const response = await publish(base, batch, { token: PUBLISHER });
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      error: string;
      message: string;
      issues: Array<{ index: number }>;
    };
    expect(body.error).toBe('invalid_message');
    expect(body.message).toMatch(/^2 of 5 messages are invalid/);
    expect(body.issues.map((i) => i.index)).toEqual([2, 3]);
    expect(body.issues[1]).toMatchObject({ index: 3, path: 'type' });
    // Nothing of the refused batch arrives: the next message published is the client's first.
    expect((await publish(base, progress(9, 9, 99), { token: PUBLISHER })).status).toBe(202);
    const [first] = await client.waitForData(1);
    expect(first).toMatchObject({ sequence: 1, payload: { suite_execution_id: 9 } });
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(client.data()).toHaveLength(1);
  });

  it('answers 400 to an empty array, a non-object body and a body without payload', async () => {
    const { base } = await startApp({ publishToken: PUBLISHER });
    for (const body of [[], 'null', '"text"', 42, { type: 'test_progress' }]) {
      const response = await publish(base, body, { token: PUBLISHER });
      expect(response.status, JSON.stringify(body)).toBe(400);
      const answer = (await response.json()) as { error: string; issues: unknown[] };
      expect(answer.error).toBe('invalid_message');
      expect(answer.issues.length).toBeGreaterThan(0);
    }
  });

  it('answers 400 invalid_json to a malformed body', async () => {
    const { base } = await startApp({ publishToken: PUBLISHER });
    const response = await publish(base, '{"type": "test_progress", ', { token: PUBLISHER });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_json' });
  });

  it('answers 415 to a body that is not JSON', async () => {
    const { base } = await startApp({ publishToken: PUBLISHER });
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']) {
      const response = await publish(base, progress(1, 1, 1), { token: PUBLISHER, contentType });
      expect(response.status, contentType).toBe(415);
      expect(await response.json()).toMatchObject({ error: 'unsupported_media_type' });
    }
    const none = await fetch(`${base}/api/ws/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISHER}` },
      body: new Uint8Array(Buffer.from(JSON.stringify(progress(1, 1, 1)))),
    });
    expect(none.status).toBe(415);
  });

  it('answers 413 to a body over maxBodyBytes and publishes nothing', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER, maxBodyBytes: 2048 });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const batch = Array.from({ length: 40 }, (_, i) => progress(1, i + 1, 50));
    expect(JSON.stringify(batch).length).toBeGreaterThan(2048);
    const response = await publish(base, batch, { token: PUBLISHER });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'payload_too_large' });
    // Just under the limit still works.
    const small = batch.slice(0, 5);
    expect(JSON.stringify(small).length).toBeLessThan(2048);
    expect((await publish(base, small, { token: PUBLISHER })).status).toBe(202);
    const received = await client.waitForData(5);
    expect(received).toHaveLength(5);
  });

  it('answers 413 to a large body by default (1 MiB) before the schema is checked', async () => {
    const { base } = await startApp({ publishToken: PUBLISHER });
    const huge = JSON.stringify({ type: 'test_progress', payload: { message: 'x'.repeat(1024 * 1024) } });
    const response = await publish(base, huge, { token: PUBLISHER });
    expect(response.status).toBe(413);
  });

  it('answers 503 when the broker is unavailable, and 202 again once it is back', async () => {
    const broker = new SwitchableBroker();
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER }, { broker });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    broker.available = false;
    const down = await publish(base, progress(1, 1, 10), { token: PUBLISHER });
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ error: 'broker_unavailable' });
    broker.available = true;
    expect((await publish(base, progress(1, 1, 20), { token: PUBLISHER })).status).toBe(202);
    const [first] = await client.waitForData(1);
    expect(first?.payload.progress_percent).toBe(20);
  });

  it('accepts every data message type of the protocol', async () => {
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER });
    const client = await connect(wsUrl);
    for (const topic of [
      'test:completed',
      'suite:progress',
      'suite:completed',
      'events:*',
      'logs',
      'delta',
    ]) {
      await client.request('subscribe', { topic });
    }
    const batch = [
      {
        type: 'test_completed',
        payload: { suite_execution_id: 1, test_execution_id: 2, test_id: 't', success: true, score: 0.95 },
      },
      {
        type: 'suite_progress',
        payload: {
          suite_execution_id: 1,
          status: 'running',
          progress_percent: 40,
          completed_tests: 4,
          total_tests: 10,
        },
      },
      {
        type: 'suite_completed',
        payload: {
          suite_execution_id: 1,
          success_rate: 0.9,
          total_tests: 10,
          passed_tests: 9,
          failed_tests: 1,
        },
      },
      {
        type: 'event',
        payload: {
          suite_execution_id: 1,
          event_type: 'tool_call',
          timestamp: '2024-01-15T10:30:05Z',
          payload: {},
        },
      },
      { type: 'log_entry', payload: { level: 'info', message: 'hi', timestamp: '2024-01-15T10:30:00Z' } },
      {
        type: 'delta_update',
        payload: {
          resource_type: 'test_execution',
          resource_id: 2,
          sequence: 1,
          changes: { status: 'completed' },
        },
      },
    ];
    for (const message of batch) DataMessageSchema.parse(message);
    const response = await publish(base, batch, { token: PUBLISHER });
    expect(await response.json()).toEqual({ accepted: 6 });
    const received = await client.waitForData(6);
    expect(received.map((m) => m.type)).toEqual(batch.map((m) => m.type));
  });
});

describe('GET /api/ws/asyncapi.json', () => {
  it('serves the AsyncAPI 3 document that @atp/ws-protocol ships, without a token', async () => {
    const { base } = await startApp({ adminToken: ADMIN, publishToken: PUBLISHER });
    const response = await fetch(`${base}/api/ws/asyncapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const shipped: unknown = JSON.parse(
      readFileSync(createRequire(import.meta.url).resolve('@atp/ws-protocol/asyncapi.json'), 'utf8'),
    );
    const body = (await response.json()) as { asyncapi: string; channels: { updates: { address: string } } };
    expect(body).toEqual(shipped);
    expect(body.asyncapi).toBe('3.0.0');
    expect(body.channels.updates.address).toBe(WS_PATH);
  });
});

describe('POST /api/ws/publish: one check and one append per body', () => {
  it('hands the broker the whole batch in one append, checked once', async () => {
    const broker = new SwitchableBroker();
    const appends: number[] = [];
    const publishInner = broker.publish.bind(broker);
    broker.publish = (messages) => {
      appends.push(messages.length);
      return publishInner(messages);
    };
    const { base, wsUrl } = await startApp({ publishToken: PUBLISHER }, { broker });
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const batch = Array.from({ length: 50 }, (_, i) => progress(1 + (i % 5), i, i));
    expect((await publish(base, batch, { token: PUBLISHER })).status).toBe(202);
    expect(appends).toEqual([50]);
    const received = await client.waitForData(50);
    expect(received.map((m) => m.payload.progress_percent)).toEqual(batch.map((_, i) => i));
  });

  it('publishes through hub.publish when the router is given another RouterHub (no checked path)', async () => {
    const { hub, wsUrl } = await startApp();
    const published: number[] = [];
    const app = express();
    const server = createServer(app);
    const wrapper: RouterHub = {
      info: (request) => hub.info(request),
      clients: () => hub.clients(),
      metrics: () => hub.metrics(),
      metricsContentType: hub.metricsContentType,
      publish: (messages) => {
        published.push(Array.isArray(messages) ? messages.length : 1);
        return hub.publish(messages);
      },
    };
    app.use(createATPRouter(wrapper, { publishToken: PUBLISHER, clientScript: false }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    disposer.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const response = await publish(base, [progress(3, 1, 10), progress(3, 2, 20)], { token: PUBLISHER });
    expect(response.status).toBe(202);
    expect(published).toEqual([2]);
    const received = await client.waitForData(2);
    expect(received.map((m) => m.payload.progress_percent)).toEqual([10, 20]);
    // Invalid bodies are still refused by the router before anything reaches the hub.
    const invalid = await publish(base, [progress(3, 3, 30), { type: 'test_progress', payload: {} }], {
      token: PUBLISHER,
    });
    expect(invalid.status).toBe(400);
    expect(published).toEqual([2]);
  });
});
