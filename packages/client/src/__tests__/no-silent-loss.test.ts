import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ATPWebSocket, type ATPWebSocketError } from '../index.js';
import { fakeWebSocket } from './fake-socket.js';
import {
  confirmed,
  disposer,
  log,
  newClient,
  next,
  progress,
  publishRange,
  record,
  startHub,
  until,
} from './helpers.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

/** A `ws` WebSocket that records the frames the client sends, and the sockets it opens. */
function recordingWebSocket() {
  const frames: Array<{ type: string; id?: unknown; payload?: Record<string, unknown> }> = [];
  const sockets: WebSocket[] = [];
  class RecordingWebSocket extends WebSocket {
    constructor(address: string) {
      super(address);
      sockets.push(this);
    }
    override send(data: string): void {
      frames.push(JSON.parse(data));
      super.send(data);
    }
  }
  return { frames, sockets, WebSocket: RecordingWebSocket as never };
}

describe('a refused subscription never spoils a resume', () => {
  it('resumes the others without a gap after forbidden and too_many_subscriptions, and leaves the refused out', async () => {
    const { hub, url, cutConnections } = await startHub({
      maxSubscriptions: 2,
      authorizeSubscription: (_principal, topic) => topic !== 'logs',
    });
    const wire = recordingWebSocket();
    const ws = newClient(url, { WebSocket: wire.WebSocket, pingInterval: 0 });
    const rec = record(ws);
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(`${error.code}/${error.serverCode}`));
    const good = ws.subscribe('test:progress', { suite_execution_id: 123 });
    const forbidden = ws.subscribe('logs');
    const second = ws.subscribe('suite:progress');
    const third = ws.subscribe('suite:completed');
    await ws.connect();
    await good.ready;
    await second.ready;
    await expect(forbidden.ready).rejects.toMatchObject({ code: 'server_error', serverCode: 'forbidden' });
    await expect(third.ready).rejects.toMatchObject({ serverCode: 'too_many_subscriptions' });
    await publishRange(hub, 1, 3);
    await rec.waitForData(3);
    for (let round = 0; round < 2; round += 1) {
      cutConnections();
      await publishRange(hub, 4 + round * 3, 6 + round * 3);
      await next(ws, 'connect');
    }
    await rec.waitForData(9);
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rec.gaps).toEqual([]);
    const resumes = wire.frames.filter((f) => f.type === 'resume');
    expect(resumes).toHaveLength(2);
    for (const resume of resumes) {
      expect(resume.payload?.subscriptions).toEqual([
        { topic: 'test:progress', filter: { suite_execution_id: 123 } },
        { topic: 'suite:progress', filter: {} },
      ]);
    }
    expect(errors).toEqual(['server_error/forbidden', 'server_error/too_many_subscriptions']);
  });

  it('tells the owner when a subscription is refused while resuming, and keeps the others', async () => {
    let allowLogs = true;
    const { hub, url, cutConnections } = await startHub({
      authorizeSubscription: (_principal, topic) => topic !== 'logs' || allowLogs,
    });
    const ws = newClient(url, { pingInterval: 0 });
    const rec = record(ws);
    const logs = ws.subscribe('logs');
    const logErrors: ATPWebSocketError[] = [];
    logs.on('error', (error) => logErrors.push(error));
    ws.subscribe('test:progress');
    await ws.connect();
    await logs.ready;
    allowLogs = false;
    cutConnections();
    await publishRange(hub, 1, 2);
    await next(ws, 'connect');
    await until(() => logErrors.length === 1, 'the per-subscription error');
    expect(logErrors[0]).toMatchObject({ serverCode: 'forbidden' });
    await rec.waitForData(2);
    expect(rec.gaps).toEqual([]);
    expect(ws.subscriptions.map((s) => s.topic)).toEqual(['test:progress']);
  });
});

describe('listeners are isolated from each other', () => {
  it('delivers to every listener when one throws, and reports the failure as error', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url);
    const errors: ATPWebSocketError[] = [];
    ws.on('error', ({ error }) => errors.push(error));
    ws.on('message', () => {
      throw new Error('boom');
    });
    const received: number[] = [];
    ws.on('message', (message) =>
      received.push(Number((message.payload as { test_execution_id: number }).test_execution_id)),
    );
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress');
    await ws.connect();
    await subscribed;
    await publishRange(hub, 1, 2);
    await until(() => received.length === 2, 'two messages for the second listener');
    expect(errors.map((e) => e.code)).toEqual(['listener_failed', 'listener_failed']);
    expect(errors[0]?.cause).toEqual(new Error('boom'));
  });

  it('writes a failing listener to the console when nothing listens to error', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url);
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    disposer.add(() => logged.mockRestore());
    ws.on('test_progress', () => {
      throw new Error('boom');
    });
    const received: number[] = [];
    ws.on('test_progress', (data) => received.push(data.test_execution_id));
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress');
    await ws.connect();
    await subscribed;
    await publishRange(hub, 1, 2);
    await until(() => received.length === 2, 'two messages');
    expect(logged).toHaveBeenCalledTimes(2);
  });
});

describe('subscription changes under the server rate limit', () => {
  it('keeps its view and the server’s equal after 60 subscribe/release pairs and 5 subscribes', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url, { pingInterval: 0 });
    const rec = record(ws);
    await ws.connect();
    for (let suite = 1; suite <= 60; suite += 1) {
      const release = ws.subscribe('test:progress', { suite_execution_id: suite });
      release();
    }
    const kept = [101, 102, 103, 104, 105].map((suite) =>
      ws.subscribe('test:progress', { suite_execution_id: suite }),
    );
    await Promise.all(kept.map((s) => s.ready));
    expect(ws.subscriptions).toHaveLength(5);
    await until(() => ws.pendingRequests === 0, 'every request answered', 10000);
    const server = (await hub.clients())[0];
    expect(server?.subscriptions).toEqual(['test:progress']);
    await hub.publish([101, 102, 103, 104, 105, 1, 60].map((suite) => progress(suite, suite)));
    await rec.waitForData(5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rec.data.map((d) => d.payload.suite_execution_id)).toEqual([101, 102, 103, 104, 105]);
  });

  it('re-sends a request the server refused for rate, so it is not lost', async () => {
    const { hub, url } = await startHub({ rateLimit: { messagesPerSecond: 5, burst: 3 } });
    const ws = newClient(url, { pingInterval: 0 });
    const rec = record(ws);
    await ws.connect();
    const subs = [1, 2, 3, 4, 5, 6].map((suite) =>
      ws.subscribe('test:progress', { suite_execution_id: suite }),
    );
    await Promise.all(subs.map((s) => s.ready));
    await hub.publish([1, 2, 3, 4, 5, 6].map((suite) => progress(suite, suite)));
    await rec.waitForData(6);
  });
});

describe('reference counts', () => {
  it('unsubscribe(topic) releases one plain reference, never a handle owned through a signal', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url, { pingInterval: 0 });
    const rec = record(ws);
    await ws.connect();
    const owner = new AbortController();
    const owned = ws.subscribe('test:progress', { suite_execution_id: 1 }, { signal: owner.signal });
    ws.subscribe('test:progress', { suite_execution_id: 1 });
    await owned.ready;
    ws.unsubscribe('test:progress');
    expect(ws.subscriptions).toEqual([
      { topic: 'test:progress', filter: { suite_execution_id: 1 }, refs: 1 },
    ]);
    await hub.publish(progress(1, 1));
    await rec.waitForData(1);
    owner.abort();
    expect(ws.subscriptions).toEqual([]);
    await until(() => ws.pendingRequests === 0, 'the unsubscribe answered');
    expect((await hub.clients())[0]?.subscriptions).toEqual([]);
  });
});

describe('reconnect policy', () => {
  it('grows the backoff across connections that close right after connected, and gives up at maxReconnectAttempts', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    disposer.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise((resolve) => server.once('listening', resolve));
    server.on('connection', (socket) => {
      socket.send(
        JSON.stringify({
          type: 'connected',
          payload: {
            client_id: 'c1',
            protocol: 1,
            ping_interval: 30,
            ping_timeout: 10,
            epoch: 'e',
            offset: 0,
          },
        }),
      );
      setTimeout(() => socket.close(1013, 'try again later'), 5);
    });
    const attempts: number[] = [];
    const ws = newClient(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/x`, {
      maxReconnectAttempts: 3,
      minUptime: 1000,
      retryDelay: (attempt) => {
        attempts.push(attempt);
        return 10;
      },
    });
    const failed = next(ws, 'reconnect_failed');
    await ws.connect();
    expect(await failed).toEqual([{ attempts: 3 }]);
    expect(attempts).toEqual([1, 2, 3]);
  });
});

describe('send() while the socket is closing', () => {
  it('queues the message for the next connection instead of dropping it', async () => {
    const { hub, url } = await startHub();
    const wire = recordingWebSocket();
    const ws = newClient(url, { WebSocket: wire.WebSocket, pingInterval: 0 });
    await ws.connect();
    wire.sockets[0]?.terminate();
    ws.send({ type: 'subscribe', id: 'raw', payload: { topic: 'logs' } });
    await next(ws, 'connect');
    await until(() => wire.frames.some((f) => f.id === 'raw'), 'the raw subscribe sent');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await hub.clients())[0]?.subscriptions).toContain('logs');
  });
});

describe('online, offline and visibility', () => {
  function environment() {
    const target = new EventTarget();
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
    vi.stubGlobal('addEventListener', target.addEventListener.bind(target));
    vi.stubGlobal('removeEventListener', target.removeEventListener.bind(target));
    vi.stubGlobal('document', doc);
    return { target, doc };
  }

  it('probes an open connection at once when the browser comes back online or the page becomes visible', () => {
    const { target, doc } = environment();
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({ url: 'ws://test/x', WebSocket: fake.WebSocket, pongTimeout: 50 });
    void ws.connect();
    fake.last().accept();
    target.dispatchEvent(new Event('online'));
    expect(fake.last().sentOf('ping')).toHaveLength(1);
    doc.dispatchEvent(new Event('visibilitychange'));
    // One probe at a time.
    expect(fake.last().sentOf('ping')).toHaveLength(1);
    ws.disconnect();
  });

  it('drops a probed connection that does not answer, and reconnects', async () => {
    const { target } = environment();
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      pongTimeout: 20,
      retryDelay: () => 0,
    });
    void ws.connect();
    fake.last().accept();
    target.dispatchEvent(new Event('offline'));
    await until(() => fake.sockets.length === 2, 'a new socket');
    ws.disconnect();
  });

  it('comes back after reconnect_failed when the browser goes online again', async () => {
    const { target } = environment();
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      maxReconnectAttempts: 1,
      retryDelay: () => 0,
    });
    const failed = new Promise((resolve) => ws.on('reconnect_failed', resolve));
    void ws.connect();
    fake.last().drop();
    await new Promise((resolve) => setTimeout(resolve, 5));
    fake.last().drop();
    await failed;
    expect(ws.state).toBe('closed');
    const count = fake.sockets.length;
    target.dispatchEvent(new Event('online'));
    expect(fake.sockets).toHaveLength(count + 1);
    fake.last().accept();
    expect(ws.state).toBe('open');
    ws.disconnect();
  });
});

describe('history for every subscriber that asks for it', () => {
  it("replays from: 'start' to a second subscriber of the same filter, without duplicates for the first", async () => {
    const { hub, url } = await startHub();
    await hub.publish([log(5, 'l1'), log(5, 'l2'), log(6, 'x')]);
    const ws = newClient(url, { pingInterval: 0 });
    const rec = record(ws);
    const first: string[] = [];
    const a = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    a.on('message', (entry) => first.push(String((entry.payload as { message: string }).message)));
    await ws.connect();
    await until(() => first.length === 2, 'the first replay');
    const second: string[] = [];
    const b = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    b.on('message', (entry) => second.push(String((entry.payload as { message: string }).message)));
    await b.ready;
    await hub.publish(log(5, 'l3'));
    await until(() => second.length === 3 && first.length === 3, 'l3 for both');
    expect(second).toEqual(['l1', 'l2', 'l3']);
    expect(first).toEqual(['l1', 'l2', 'l3']);
    expect(rec.data.map((d) => d.payload.message)).toEqual(['l1', 'l2', 'l3']);
  });

  it("replays from: 'start' again after the last reference was released and a new one made", async () => {
    const { hub, url } = await startHub();
    await hub.publish([log(5, 'l1'), log(5, 'l2')]);
    const ws = newClient(url, { pingInterval: 0 });
    const first = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    const seen: string[] = [];
    first.on('message', (entry) => seen.push(String((entry.payload as { message: string }).message)));
    await ws.connect();
    await until(() => seen.length === 2, 'the first replay');
    first.unsubscribe();
    await until(() => ws.pendingRequests === 0, 'the unsubscribe answered');
    await hub.publish(log(5, 'l3'));
    const again: string[] = [];
    const second = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    second.on('message', (entry) => again.push(String((entry.payload as { message: string }).message)));
    await until(() => again.length === 3, 'the second replay');
    expect(again).toEqual(['l1', 'l2', 'l3']);
  });
});

describe('iterate()', () => {
  it('yields the messages of one subscription and releases it on break', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url, { pingInterval: 0 });
    await ws.connect();
    const seen: unknown[] = [];
    const done = (async () => {
      for await (const message of ws.iterate('test:progress', { suite_execution_id: 1 })) {
        seen.push((message.payload as { test_execution_id: number }).test_execution_id);
        if (seen.length === 2) break;
      }
    })();
    await until(() => ws.subscriptions.length === 1 && ws.pendingRequests === 0, 'the subscription');
    await hub.publish([progress(1, 1), progress(2, 2), progress(3, 1), progress(4, 1)]);
    await done;
    expect(seen).toEqual([1, 3]);
    expect(ws.subscriptions).toEqual([]);
  });
});

describe('errors say what happened, once', () => {
  it('emits one socket_error per failed attempt, with the cause the platform gives', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const ws = newClient(`ws://127.0.0.1:${port}/x`, { maxReconnectAttempts: 2 });
    const errors: ATPWebSocketError[] = [];
    ws.on('error', ({ error }) => errors.push(error));
    await expect(ws.connect()).rejects.toMatchObject({ code: 'reconnect_failed' });
    expect(errors).toHaveLength(3);
    for (const error of errors) {
      expect(error.code).toBe('socket_error');
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
    }
  });

  it('writes an error nobody listens to through the logger', async () => {
    const logged: unknown[] = [];
    const ws = newClient('ws://127.0.0.1:9/x', {
      maxReconnectAttempts: 0,
      logger: { error: (...args: unknown[]) => logged.push(...args) },
    });
    await expect(ws.connect()).rejects.toBeDefined();
    expect(logged.length).toBeGreaterThan(0);
    expect(logged[0]).toMatchObject({ code: 'socket_error' });
  });
});

describe('a history replay cut by a disconnect', () => {
  it('continues it for every reference of the subscription, so none misses what was published meanwhile', async () => {
    const { hub, url } = await startHub({ softBufferedBytes: 1024, maxBufferedBytes: 1 << 20 });
    await publishRange(hub, 1, 2000, 7);
    const wire = recordingWebSocket();
    const ws = newClient(url, { WebSocket: wire.WebSocket, pingInterval: 0 });
    const history: number[] = [];
    const plain: number[] = [];
    const id = (message: { payload: unknown }) =>
      (message.payload as { test_execution_id: number }).test_execution_id;
    const withHistory = ws.subscribe('test:progress', { suite_execution_id: 7 }, { from: 'start' });
    withHistory.on('message', (message) => {
      history.push(id(message));
      if (history.length === 50) wire.sockets[0]?.terminate();
    });
    ws.subscribe('test:progress', { suite_execution_id: 7 }).on('message', (message) =>
      plain.push(id(message)),
    );
    await ws.connect();
    await next(ws, 'connect');
    await publishRange(hub, 2001, 2010, 7);
    const all = Array.from({ length: 2010 }, (_, i) => i + 1);
    await until(() => history.length >= 2010 && plain.length >= 2010, 'every message for both', 10000);
    expect(history).toEqual(all);
    expect(plain).toEqual(all);
  });
});

describe('connection inputs and control', () => {
  it('calls url, query and token functions before every connect', async () => {
    const { url, cutConnections } = await startHub({
      authenticate: (_request, token) => (token ? { id: 'alice' } : null),
    });
    const urls: string[] = [];
    let calls = 0;
    const wire = recordingWebSocket();
    class Spy extends (wire.WebSocket as unknown as typeof WebSocket) {
      constructor(address: string) {
        super(address);
        urls.push(address);
      }
    }
    const ws = newClient(url, {
      WebSocket: Spy as never,
      url: async () => url,
      query: () => ({ tab: `t${++calls}` }),
      token: async () => `token-${calls}`,
    });
    await ws.connect();
    cutConnections();
    await next(ws, 'connect');
    expect(urls.map((u) => new URL(u).searchParams.get('tab'))).toEqual(['t1', 't2']);
    // Called together with query (before it counts the connect): a fresh token each time.
    expect(urls.map((u) => new URL(u).searchParams.get('token'))).toEqual(['token-0', 'token-1']);
  });

  it('passes protocols to the WebSocket constructor', () => {
    const seen: unknown[] = [];
    class Fake {
      readyState = 0;
      constructor(_url: string, protocols?: string | string[]) {
        seen.push(protocols);
      }
      send(): void {}
      close(): void {}
    }
    const ws = new ATPWebSocket({ url: 'ws://test/x', WebSocket: Fake, protocols: ['atp.v1'] });
    void ws.connect();
    expect(seen).toEqual([['atp.v1']]);
    ws.disconnect();
  });

  it('reconnect() drops the connection and resumes the session at once', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url, { pingInterval: 0, retryDelay: () => 60000 });
    const rec = record(ws);
    ws.subscribe('test:progress');
    await ws.connect();
    await until(() => ws.pendingRequests === 0, 'the subscription');
    await publishRange(hub, 1, 2);
    await rec.waitForData(2);
    const reconnected = next(ws, 'connect');
    await ws.reconnect();
    expect((await reconnected)[0].resumed).toBe(true);
    await publishRange(hub, 3, 3);
    await rec.waitForData(3);
    expect(rec.sequences()).toEqual([1, 2, 3]);
    expect(rec.gaps).toEqual([]);
  });
});
