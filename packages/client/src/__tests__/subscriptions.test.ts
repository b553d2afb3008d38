import { describe, expect, it } from 'vitest';
import { ATPWebSocket } from '../index.js';
import { SubscriptionRegistry } from '../subscriptions.js';
import { fakeWebSocket } from './fake-socket.js';

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

describe('SubscriptionRegistry', () => {
  it('counts references of equal subscriptions however their filters are spelled', () => {
    const registry = new SubscriptionRegistry();
    const a = registry.add('logs', { suite_execution_id: 1, level: ['error', 'info'] });
    const b = registry.add('logs', { level: ['info', 'error'], suite_execution_id: 1 });
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(registry.list().length).toBe(1);
    expect(registry.list()[0]?.refs).toBe(2);
    expect(a.release()).toBeUndefined();
    expect(a.release()).toBeUndefined();
    expect(b.release()?.topic).toBe('logs');
    expect(registry.list().length).toBe(0);
  });

  it('treats no filter and {} as the same subscription, and one-element arrays as their value', () => {
    const registry = new SubscriptionRegistry();
    registry.add('test:progress');
    expect(registry.add('test:progress', {}).created).toBe(false);
    registry.add('test:progress', { suite_execution_id: [5] });
    expect(registry.add('test:progress', { suite_execution_id: 5 }).created).toBe(false);
    expect(registry.list().length).toBe(2);
  });

  it('makes an old release a no-op once unsubscribe removed the entry, even if it was re-created', () => {
    const registry = new SubscriptionRegistry();
    const old = registry.add('logs');
    registry.remove('logs');
    const fresh = registry.add('logs');
    expect(old.release()).toBeUndefined();
    expect(registry.list()[0]?.refs).toBe(1);
    expect(fresh.release()).toBeDefined();
  });
});

describe('ATPWebSocket subscriptions on the wire', () => {
  it('sends one subscribe for identical subscriptions and unsubscribes only when the last is released', () => {
    const { ws, socket } = openClient();
    const first = ws.subscribe('test:progress', { suite_execution_id: 123 });
    const second = ws.subscribe('test:progress', { suite_execution_id: [123] });
    expect(socket.sentOf('subscribe')).toHaveLength(1);
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

  it('unsubscribe(topic) removes every filter of the topic with one wire message, whatever the counts', () => {
    const { ws, socket } = openClient();
    ws.subscribe('logs', { level: 'error' });
    ws.subscribe('logs', { level: 'error' });
    ws.subscribe('logs', { level: 'info' });
    const other = ws.subscribe('test:progress');
    ws.unsubscribe('logs');
    expect(socket.sentOf('unsubscribe').map((m) => m.payload)).toEqual([{ topic: 'logs' }]);
    expect(ws.subscriptions.map((s) => s.topic)).toEqual(['test:progress']);
    other();
    ws.unsubscribe('logs');
    expect(socket.sentOf('unsubscribe')).toHaveLength(2);
    ws.disconnect();
  });

  it('unsubscribe(topic, filter) removes exactly that subscription', () => {
    const { ws, socket } = openClient();
    ws.subscribe('logs', { level: 'error' });
    ws.subscribe('logs', { level: 'info' });
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
