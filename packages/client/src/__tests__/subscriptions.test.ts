import { describe, expect, it } from 'vitest';
import { ATPWebSocket } from '../index.js';
import { SubscriptionRegistry } from '../subscriptions.js';
import { type FakeSocket, fakeWebSocket } from './fake-socket.js';

function openClient() {
  const fake = fakeWebSocket();
  const ws = new ATPWebSocket({
    url: 'ws://test/api/ws/updates',
    WebSocket: fake.WebSocket,
    pingInterval: 0,
  });
  void ws.connect();
  fake.last().accept();
  return { ws, fake, socket: fake.last() };
}

/** Answers every subscribe the socket sent with `subscribed`. */
function answer(socket: FakeSocket): void {
  for (const { id, payload } of socket.sentOf('subscribe').splice(0)) {
    socket.receive({ type: 'subscribed', id, payload: { ...payload, epoch: 'e1', offset: 0 } });
  }
}

describe('SubscriptionRegistry', () => {
  it('counts references of equal subscriptions however their filters are spelled', () => {
    const registry = new SubscriptionRegistry();
    const a = registry.add('logs', { suite_execution_id: 1, level: ['error', 'info'] }, undefined, false);
    const b = registry.add('logs', { level: ['info', 'error'], suite_execution_id: 1 }, undefined, false);
    expect(a.entry).toBe(b.entry);
    expect(registry.list()).toHaveLength(1);
    expect(registry.list()[0]?.refs).toHaveLength(2);
    expect(registry.release(a)).toBe(true);
    expect(registry.release(a)).toBe(false);
    expect(registry.list()[0]?.refs).toEqual([b]);
    registry.release(b);
    expect(registry.list()).toHaveLength(0);
  });

  it('treats no filter and {} as the same subscription, and one-element arrays as their value', () => {
    const registry = new SubscriptionRegistry();
    const none = registry.add('test:progress', undefined, undefined, false);
    expect(registry.add('test:progress', {}, undefined, false).entry).toBe(none.entry);
    const five = registry.add('test:progress', { suite_execution_id: [5] }, undefined, false);
    expect(registry.add('test:progress', { suite_execution_id: 5 }, undefined, false).entry).toBe(five.entry);
    expect(registry.list()).toHaveLength(2);
  });

  it('gives unsubscribe(topic) the newest reference of each filter taken without a signal', () => {
    const registry = new SubscriptionRegistry();
    const plain = registry.add('logs', { level: 'error' }, undefined, false);
    registry.add('logs', { level: 'error' }, undefined, true);
    const info = registry.add('logs', { level: 'info' }, undefined, false);
    registry.add('logs', { level: 'debug' }, undefined, true);
    expect(registry.plainRefs('logs')).toEqual([plain, info]);
    expect(registry.plainRefs('logs', { level: 'info' })).toEqual([info]);
  });
});

describe('ATPWebSocket subscriptions on the wire', () => {
  it('sends one subscribe for identical subscriptions and unsubscribes only when the last is released', () => {
    const { ws, socket } = openClient();
    const first = ws.subscribe('test:progress', { suite_execution_id: 123 });
    const second = ws.subscribe('test:progress', { suite_execution_id: [123] });
    expect(socket.sentOf('subscribe')).toHaveLength(1);
    answer(socket);
    expect(ws.subscriptions).toEqual([
      { topic: 'test:progress', filter: { suite_execution_id: 123 }, refs: 2 },
    ]);
    first();
    first();
    expect(socket.sentOf('unsubscribe')).toHaveLength(0);
    second();
    expect(socket.sentOf('unsubscribe')).toEqual([
      {
        type: 'unsubscribe',
        id: expect.any(Number),
        payload: { topic: 'test:progress', filter: { suite_execution_id: 123 } },
      },
    ]);
    ws.disconnect();
  });

  it('waits for the answer to a subscribe before unsubscribing, and sends nothing more when it is taken again', () => {
    const { ws, socket } = openClient();
    ws.subscribe('logs')();
    ws.subscribe('logs');
    expect(socket.sent.map((m) => m.type)).toEqual(['subscribe']);
    answer(socket);
    expect(socket.sent.map((m) => m.type)).toEqual(['subscribe']);
    ws.disconnect();
  });

  it('unsubscribe(topic) releases one plain reference of each filter of the topic', () => {
    const { ws, socket } = openClient();
    ws.subscribe('logs', { level: 'error' });
    ws.subscribe('logs', { level: 'error' });
    ws.subscribe('logs', { level: 'info' });
    const other = ws.subscribe('test:progress');
    answer(socket);
    ws.unsubscribe('logs');
    expect(socket.sentOf('unsubscribe').map((m) => m.payload)).toEqual([
      { topic: 'logs', filter: { level: 'info' } },
    ]);
    expect(ws.subscriptions.map((s) => [s.topic, s.refs])).toEqual([
      ['logs', 1],
      ['test:progress', 1],
    ]);
    other();
    ws.unsubscribe('logs');
    expect(socket.sentOf('unsubscribe')).toHaveLength(3);
    ws.disconnect();
  });

  it('unsubscribe(topic, filter) releases a reference of exactly that subscription', () => {
    const { ws, socket } = openClient();
    ws.subscribe('logs', { level: 'error' });
    ws.subscribe('logs', { level: 'info' });
    answer(socket);
    ws.unsubscribe('logs', { level: 'info' });
    expect(socket.sentOf('unsubscribe').map((m) => m.payload)).toEqual([
      { topic: 'logs', filter: { level: 'info' } },
    ]);
    expect(ws.subscriptions).toEqual([{ topic: 'logs', filter: { level: 'error' }, refs: 1 }]);
    ws.disconnect();
  });

  it('sends subscriptions made before connect() once connected, with their replay start', () => {
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({ url: 'ws://test/x', WebSocket: fake.WebSocket, pingInterval: 0 });
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    ws.subscribe('logs', undefined, { from: 'start' });
    const released = ws.subscribe('delta');
    released();
    void ws.connect();
    expect(fake.last().sent).toEqual([]);
    fake.last().accept();
    expect(
      fake
        .last()
        .sentOf('subscribe')
        .map((m) => m.payload),
    ).toEqual([
      { topic: 'test:progress', filter: { suite_execution_id: 123 } },
      { topic: 'logs', filter: {}, from: 'start' },
    ]);
    ws.disconnect();
  });

  it('restores every subscription after a reconnect with one resume, and new ones with `from` separately', async () => {
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      pingInterval: 0,
      retryDelay: () => 0,
    });
    ws.subscribe('test:progress', { suite_execution_id: 1 });
    ws.subscribe('logs', { level: 'error' }, { from: 'start' });
    void ws.connect();
    fake.last().accept({ epoch: 'e1', offset: 10 });
    answer(fake.last());
    fake.last().data(1, 11);
    fake.last().drop();
    ws.subscribe('suite:completed');
    ws.subscribe('events:*', undefined, { from: { epoch: 'e1', offset: 3 } });
    const released = ws.subscribe('delta');
    released();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const socket = fake.last();
    expect(fake.sockets).toHaveLength(2);
    socket.accept({ epoch: 'e1', offset: 20 });
    expect(socket.sent.map((m) => m.type)).toEqual(['resume', 'subscribe']);
    expect(socket.sent[0]?.payload).toEqual({
      epoch: 'e1',
      offset: 11,
      sequence: 1,
      subscriptions: [
        { topic: 'test:progress', filter: { suite_execution_id: 1 } },
        { topic: 'logs', filter: { level: 'error' } },
        { topic: 'suite:completed', filter: {} },
      ],
    });
    expect(socket.sent[1]?.payload).toEqual({
      topic: 'events:*',
      filter: {},
      from: { epoch: 'e1', offset: 3 },
    });
    ws.disconnect();
  });

  it('asks again for a history whose subscribe the lost connection never answered, instead of resuming it', async () => {
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      pingInterval: 0,
      retryDelay: () => 0,
    });
    ws.subscribe('test:progress');
    ws.subscribe('logs', undefined, { from: 'start' });
    void ws.connect();
    fake.last().accept({ epoch: 'e1', offset: 10 });
    fake.last().data(1, 11);
    fake.last().drop();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const socket = fake.last();
    socket.accept({ epoch: 'e1', offset: 20 });
    expect(socket.sent.map((m) => m.type)).toEqual(['resume', 'subscribe']);
    expect(socket.sent[0]?.payload?.subscriptions).toEqual([{ topic: 'test:progress', filter: {} }]);
    expect(socket.sent[1]?.payload).toEqual({ topic: 'logs', filter: {}, from: 'start' });
    ws.disconnect();
  });

  it('sends nothing for subscriptions made and released while disconnected', () => {
    const { ws, fake } = openClient();
    ws.disconnect();
    const release = ws.subscribe('logs');
    release();
    ws.unsubscribe('test:progress');
    expect(fake.last().sent).toEqual([]);
  });
});

describe('subscriptions the server refuses', () => {
  it('leaves a subscription refused as unknown_topic out of later resumes, and reports the error', async () => {
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      pingInterval: 0,
      retryDelay: () => 0,
    });
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(`${error.code}/${error.serverCode}`));
    // @ts-expect-error: a topic the server does not know
    ws.subscribe('test:progres');
    ws.subscribe('logs');
    void ws.connect();
    const socket = fake.last();
    socket.accept();
    const [bad, good] = socket.sentOf('subscribe');
    socket.receive({
      type: 'error',
      id: bad?.id,
      payload: { code: 'unknown_topic', message: "unknown topic 'test:progres'" },
    });
    socket.receive({
      type: 'subscribed',
      id: good?.id,
      payload: { topic: 'logs', filter: {}, epoch: 'e1', offset: 0 },
    });
    expect(errors).toEqual(['server_error/unknown_topic']);
    socket.drop();
    await new Promise((resolve) => setTimeout(resolve, 1));
    fake.last().accept();
    expect(fake.last().sent[0]?.payload?.subscriptions).toEqual([{ topic: 'logs', filter: {} }]);
    ws.disconnect();
  });
});
