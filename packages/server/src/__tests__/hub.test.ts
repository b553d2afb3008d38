import { CloseCode, ErrorCode } from '@atp/ws-protocol';
import { describe, expect, it, vi } from 'vitest';
import type { RawTestClient } from '@atp/test-utils';
import {
  completed,
  connectOver as connect,
  log,
  progress,
  startHub,
  toolCall,
  transport,
} from './helpers.js';

describe('connection', () => {
  it('greets with connected, the requested client_id and the stream position', async () => {
    const { url } = await startHub();
    const client = await connect(url, 'client_id=my-client-id');
    const connected = client.messages[0];
    expect(connected?.type).toBe('connected');
    expect(connected?.payload).toMatchObject({
      client_id: 'my-client-id',
      offset: 0,
      ping_interval: 30,
      ping_timeout: 10,
    });
    expect(typeof connected?.payload.epoch).toBe('string');
  });

  it('assigns a fresh client_id when none is asked for', async () => {
    const { url } = await startHub();
    const a = await connect(url);
    const b = await connect(url);
    const idA = a.messages[0]?.payload.client_id as string;
    expect(idA).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(idA).not.toBe(b.messages[0]?.payload.client_id);
  });

  it('refuses a malformed client_id with HTTP 400 before the upgrade', async () => {
    const { url } = await startHub();
    await expect(connect(url, 'client_id=bad%20id!')).rejects.toMatchObject({ statusCode: 400 });
    await expect(connect(url, `client_id=${'x'.repeat(65)}`)).rejects.toMatchObject({ statusCode: 400 });
  });

  it('answers ping with pong carrying the id and position', async () => {
    const { url } = await startHub();
    const client = await connect(url);
    const pong = await client.request('ping', {});
    expect(pong.type).toBe('pong');
    expect(pong.payload).toMatchObject({ offset: 0 });
    client.send({ type: 'ping', id: 7 });
    expect((await client.waitFor((m) => m.id === 7)).type).toBe('pong');
  });

  it('closes the old connection with 4000 when a client_id is taken over', async () => {
    const { url, hub } = await startHub();
    const first = await connect(url, 'client_id=same');
    const second = await connect(url, 'client_id=same');
    expect((await first.waitForClose()).code).toBe(CloseCode.SessionReplaced);
    expect((await second.request('ping', {})).type).toBe('pong');
    expect((await hub.clients()).map((c) => c.client_id)).toEqual(['same']);
  });
});

describe('subscriptions and delivery', () => {
  it('delivers only matching messages with consecutive sequences', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    const ack = await client.request('subscribe', {
      topic: 'test:progress',
      filter: { suite_execution_id: 123 },
    });
    expect(ack).toMatchObject({
      type: 'subscribed',
      payload: { topic: 'test:progress', filter: { suite_execution_id: 123 } },
    });
    await hub.publish([progress(999, 1, 10), progress(123, 1, 10), completed(123, 1), progress(123, 2, 20)]);
    const data = await client.waitForData(2);
    expect(data.map((m) => [m.type, m.payload.suite_execution_id, m.sequence])).toEqual([
      ['test_progress', 123, 1],
      ['test_progress', 123, 2],
    ]);
    expect(data[1]).toMatchObject({ offset: 4, epoch: ack.payload.epoch });
  });

  it('delivers a message once even when several subscriptions match it', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'events:*' });
    await client.request('subscribe', { topic: 'events:tool_call' });
    await client.request('subscribe', { topic: 'events:*', filter: { suite_execution_id: 5 } });
    await hub.publish([toolCall(5), toolCall(5, 'llm_request'), log(5, 'info', 'marker')]);
    await client.request('subscribe', { topic: 'logs' });
    await hub.publish(log(5, 'info', 'end'));
    const data = await client.waitForData(3);
    expect(data.map((m) => [m.payload.event_type ?? m.payload.message, m.sequence])).toEqual([
      ['tool_call', 1],
      ['llm_request', 2],
      ['end', 3],
    ]);
  });

  it('matches filters with array values and several keys', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', {
      topic: 'logs',
      filter: { suite_execution_id: [1, 2], level: ['error', 'critical'] },
    });
    await hub.publish([
      log(1, 'info', 'no'),
      log(2, 'error', 'yes-1'),
      log(3, 'error', 'no'),
      log(1, 'critical', 'yes-2'),
    ]);
    const data = await client.waitForData(2);
    expect(data.map((m) => m.payload.message)).toEqual(['yes-1', 'yes-2']);
  });

  it('unsubscribe without a filter removes every subscription to the topic, with one only that one', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 2 } });
    const one = await client.request('unsubscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    expect(one.payload).toMatchObject({ topic: 'logs', removed: 1 });
    await hub.publish([log(1, 'info', 'gone'), log(2, 'info', 'kept')]);
    expect((await client.waitForData(1)).map((m) => m.payload.message)).toEqual(['kept']);
    const all = await client.request('unsubscribe', { topic: 'logs' });
    expect(all.payload).toMatchObject({ topic: 'logs', removed: 1 });
    await hub.publish(log(2, 'info', 'after'));
    await client.request('ping', {});
    expect(client.data()).toHaveLength(1);
  });

  it('serves many suites through the index without cross-talk', async () => {
    const { url, hub } = await startHub();
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(url)));
    await Promise.all(
      clients.map((c, i) =>
        c.request('subscribe', { topic: 'suite:progress', filter: { suite_execution_id: i } }),
      ),
    );
    await hub.publish(
      clients.map((_, i) => ({
        type: 'suite_progress' as const,
        payload: {
          suite_execution_id: i,
          status: 'running' as const,
          progress_percent: 10,
          completed_tests: 1,
          total_tests: 10,
        },
      })),
    );
    for (const [i, client] of clients.entries()) {
      const [only] = await client.waitForData(1);
      expect(only?.payload.suite_execution_id).toBe(i);
    }
    await Promise.all(clients.map((c) => c.request('ping', {})));
    expect(clients.every((c) => c.data().length === 1)).toBe(true);
  });
});

describe('bad input', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['invalid JSON', '{"type": "subscribe",', ErrorCode.InvalidJson, /not valid JSON/],
    ['a non-object', '[1,2]', ErrorCode.InvalidMessage, /JSON object/],
    [
      'an unknown type',
      '{"type":"publish","payload":{}}',
      ErrorCode.UnknownType,
      /unknown message type 'publish'/,
    ],
    [
      'a bad payload',
      '{"type":"subscribe","payload":{"topic":5}}',
      ErrorCode.InvalidMessage,
      /payload\.topic/,
    ],
    [
      'an unknown topic',
      '{"type":"subscribe","payload":{"topic":"tests"}}',
      ErrorCode.UnknownTopic,
      /unknown topic 'tests'/,
    ],
    [
      'a filter key the topic lacks',
      '{"type":"subscribe","payload":{"topic":"test:progress","filter":{"suite_id":1}}}',
      ErrorCode.InvalidFilter,
      /filter key 'suite_id' is not allowed on topic 'test:progress'; allowed: suite_execution_id, test_id/,
    ],
    [
      'a filter value of the wrong type',
      '{"type":"subscribe","payload":{"topic":"test:progress","filter":{"suite_execution_id":"123"}}}',
      ErrorCode.InvalidFilter,
      /suite_execution_id/,
    ],
  ];

  it.each(cases)(
    'answers %s with an error and keeps serving everyone',
    async (_name, frame, code, message) => {
      const { url, hub } = await startHub();
      const bystander = await connect(url);
      await bystander.request('subscribe', { topic: 'logs' });
      const client = await connect(url);
      client.send(frame);
      const error = await client.waitFor((m) => m.type === 'error');
      expect(error.payload.code).toBe(code);
      expect(error.payload.message).toMatch(message);
      await hub.publish(log(1, 'info', 'still here'));
      expect((await bystander.waitForData(1))[0]?.payload.message).toBe('still here');
      expect((await client.request('ping', {})).type).toBe('pong');
      const fresh = await connect(url);
      expect((await fresh.request('ping', {})).type).toBe('pong');
    },
  );

  it('echoes the id of a rejected message', async () => {
    const { url } = await startHub();
    const client = await connect(url);
    client.send({ type: 'subscribe', id: 'abc', payload: { topic: 'nope' } });
    expect(await client.waitFor((m) => m.type === 'error')).toMatchObject({
      id: 'abc',
      payload: { code: 'unknown_topic' },
    });
  });

  // Binary frames exist on WebSocket only: the SSE fallback carries text lines.
  const itWebSocket = transport === 'websocket' ? it : () => {};
  itWebSocket('answers a binary frame with invalid_message', async () => {
    const { url } = await startHub();
    const client = await connect(url);
    (client as RawTestClient).ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const error = await client.waitFor((m) => m.type === 'error');
    expect(error.payload).toMatchObject({ code: ErrorCode.InvalidMessage });
    expect(error.payload.message).toMatch(/binary/);
  });

  it('closes with 1009 when a frame exceeds maxPayload, and serves the next client', async () => {
    const { url } = await startHub({ maxPayload: 1024 });
    const client = await connect(url);
    client.send(JSON.stringify({ type: 'ping', payload: {}, pad: 'x'.repeat(2048) }));
    expect((await client.waitForClose()).code).toBe(CloseCode.MessageTooBig);
    const fresh = await connect(url);
    expect((await fresh.request('ping', {})).type).toBe('pong');
  });

  it('refuses a flood with rate_limited, then closes with 1008', async () => {
    const { url } = await startHub({
      rateLimit: { messagesPerSecond: 10, burst: 20, closeAfterRefused: 50 },
    });
    const client = await connect(url);
    for (let i = 0; i < 30; i++) client.send({ type: 'ping', id: i });
    const error = await client.waitFor((m) => m.type === 'error');
    expect(error.payload.code).toBe(ErrorCode.RateLimited);
    expect(client.messages.filter((m) => m.type === 'pong').length).toBeLessThanOrEqual(21);
    for (let i = 0; i < 5000 && client.isOpen; i++) client.send({ type: 'ping' });
    expect((await client.waitForClose()).code).toBe(CloseCode.PolicyViolation);
  });

  it('forgets refusals long past: only closeAfterRefused of them within a minute close', async () => {
    // Only Date is faked (the rate limits' clock); sockets and timers are real.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { url, hub } = await startHub({
        rateLimit: { messagesPerSecond: 10, burst: 20, closeAfterRefused: 50 },
      });
      const client = await connect(url);
      const received = async () => Number(/^atp_ws_messages_in_total (\d+)$/m.exec(await hub.metrics())?.[1]);
      let sent = 0;
      for (let round = 0; round < 3; round++) {
        // The clock stands still: 20 accepted (the burst), 25 refused.
        for (let i = 0; i < 45; i++) client.send({ type: 'ping', id: `${round}-${i}` });
        sent += 45;
        for (let waited = 0; (await received()) < sent; waited += 10) {
          expect(waited).toBeLessThan(5000);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        vi.setSystemTime(Date.now() + 61_000);
      }
      // 75 refusals in all, never 50 within a minute: still open, and served again.
      // The answers may still be on their way (the SSE stream is a separate request from the POSTs).
      // The third error follows the last pong on the stream.
      await vi.waitFor(() => expect(client.messages.filter((m) => m.type === 'error')).toHaveLength(3));
      expect(client.messages.filter((m) => m.type === 'pong')).toHaveLength(60);
      expect((await client.request('ping', {})).type).toBe('pong');
      // Within one minute the 50th refusal still closes.
      for (let i = 0; i < 70; i++) client.send({ type: 'ping' });
      expect((await client.waitForClose()).code).toBe(CloseCode.PolicyViolation);
    } finally {
      vi.useRealTimers();
    }
  });

  it('limits subscriptions per connection', async () => {
    const { url } = await startHub({ maxSubscriptions: 2 });
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 2 } });
    // The same subscription again is not a new one.
    expect(
      (await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 2 } })).type,
    ).toBe('subscribed');
    const refused = await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 3 } });
    expect(refused.payload).toMatchObject({ code: ErrorCode.TooManySubscriptions });
  });

  it('throws a validation error for an invalid in-process publish and publishes nothing of it', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'test:progress' });
    const bad = { type: 'test_progress', payload: { suite_execution_id: 1, progress_percent: 150 } };
    // @ts-expect-error the payload misses fields and has an out-of-range value
    expect(() => hub.publish([progress(1, 1, 5), bad])).toThrow(/progress_percent/);
    await hub.publish(progress(1, 2, 50));
    const data = await client.waitForData(1);
    expect(data.map((m) => m.payload.test_execution_id)).toEqual([2]);
  });
});

describe('hooks and connection limits', () => {
  it('refuses with 401 when authenticate returns null and accepts a good token', async () => {
    const { url } = await startHub({
      authenticate: (_req, token) => (token === 'good' ? { id: 'alice' } : null),
    });
    await expect(connect(url, 'token=bad')).rejects.toMatchObject({ statusCode: 401 });
    await expect(connect(url)).rejects.toMatchObject({ statusCode: 401 });
    expect((await connect(url, 'token=good')).messages[0]?.type).toBe('connected');
    const viaHeader = await connect(url, '', { headers: { Authorization: 'Bearer good' } });
    expect(viaHeader.messages[0]?.type).toBe('connected');
  });

  it('answers 500 when the authenticate hook throws, and keeps serving', async () => {
    let fail = true;
    const { url } = await startHub({
      authenticate: () => {
        if (fail) throw new Error('auth backend down');
        return { id: 'x' };
      },
    });
    await expect(connect(url)).rejects.toMatchObject({ statusCode: 500 });
    fail = false;
    expect((await connect(url)).messages[0]?.type).toBe('connected');
  });

  it('answers forbidden when authorizeSubscription refuses, and internal_error when it throws', async () => {
    const { url } = await startHub({
      authorizeSubscription: (_p, topic, filter) => {
        if (topic === 'delta') throw new Error('boom');
        return filter.suite_execution_id === 1;
      },
    });
    const client = await connect(url);
    expect(
      (await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 2 } })).payload,
    ).toMatchObject({
      code: ErrorCode.Forbidden,
    });
    expect((await client.request('subscribe', { topic: 'delta' })).payload).toMatchObject({
      code: ErrorCode.InternalError,
    });
    expect(
      (await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } })).type,
    ).toBe('subscribed');
  });

  it('lets only the same principal take over a client_id', async () => {
    const { url } = await startHub({ authenticate: (_req, token) => (token ? { id: token } : null) });
    const alice = await connect(url, 'client_id=c1&token=alice');
    await alice.close();
    await expect(connect(url, 'client_id=c1&token=mallory')).rejects.toMatchObject({ statusCode: 403 });
    expect((await connect(url, 'client_id=c1&token=alice')).messages[0]?.type).toBe('connected');
  });

  it('refuses origins outside the allowlist with 403', async () => {
    const { url } = await startHub({ allowedOrigins: ['https://dashboard.example'] });
    await expect(connect(url, '', { headers: { Origin: 'https://evil.example' } })).rejects.toMatchObject({
      statusCode: 403,
    });
    expect(
      (await connect(url, '', { headers: { Origin: 'https://dashboard.example' } })).messages,
    ).toHaveLength(1);
  });

  it('refuses connections past the per-IP limit with 429 and past the total with 503', async () => {
    const { url } = await startHub({ maxConnectionsPerIp: 2, maxConnections: 3 });
    await connect(url);
    await connect(url);
    await expect(connect(url)).rejects.toMatchObject({ statusCode: 429 });
    await connect(url, '', { localAddress: '127.0.0.2' });
    await expect(connect(url, '', { localAddress: '127.0.0.3' })).rejects.toMatchObject({ statusCode: 503 });
  });

  it('closes every client with 1001 on close()', async () => {
    const { url, hub } = await startHub();
    const a = await connect(url);
    const b = await connect(url);
    await hub.close();
    expect((await a.waitForClose()).code).toBe(CloseCode.GoingAway);
    expect((await b.waitForClose()).code).toBe(CloseCode.GoingAway);
  });
});
