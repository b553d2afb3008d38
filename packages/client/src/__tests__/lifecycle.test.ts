import { afterEach, describe, expect, it, vi } from 'vitest';
import { ATPWebSocket, ATPWebSocketError, type ConnectionState } from '../index.js';
import { connectUrl, resolveUrl } from '../url.js';
import { fakeWebSocket } from './fake-socket.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

function client(options: ConstructorParameters<typeof ATPWebSocket>[0] = {}) {
  const fake = fakeWebSocket();
  const ws = new ATPWebSocket({
    url: 'ws://test/api/ws/updates',
    WebSocket: fake.WebSocket,
    pingInterval: 0,
    retryDelay: () => 0,
    ...options,
  });
  const states: ConnectionState[] = [];
  const errors: string[] = [];
  ws.on('state', ({ to }) => states.push(to));
  ws.on('error', ({ error }) => errors.push(error.code));
  return { ws, fake, states, errors };
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('connection state', () => {
  it('goes idle → connecting → open → reconnecting → connecting → open → closed, through one `state` event each', async () => {
    const { ws, fake, states } = client();
    expect(ws.state).toBe('idle');
    const transitions: Array<[string, string]> = [];
    ws.on('state', ({ from, to }) => transitions.push([from, to]));
    const connected = ws.connect();
    fake.last().accept();
    await connected;
    fake.last().drop();
    await tick();
    fake.last().accept();
    ws.disconnect();
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'connecting', 'open', 'closed']);
    expect(transitions[0]).toEqual(['idle', 'connecting']);
    expect(ws.state).toBe('closed');
  });

  it('resolves connect() on `connected`, emits connect, and exposes the assigned clientId', async () => {
    const { ws, fake } = client();
    const connects: unknown[] = [];
    ws.on('connect', (info) => connects.push(info));
    const connected = ws.connect();
    expect(ws.clientId).toBeUndefined();
    fake.last().accept(undefined, 'server-given');
    await expect(connected).resolves.toBeUndefined();
    expect(connects).toEqual([{ clientId: 'server-given', resumed: false }]);
    expect(ws.clientId).toBe('server-given');
    expect(ws.isConnected).toBe(true);
    await expect(ws.connect()).resolves.toBeUndefined();
    ws.disconnect();
  });

  it('sends client_id and the token as query parameters, reusing the assigned client_id on reconnect', async () => {
    let n = 0;
    const { ws, fake } = client({ token: () => `t${++n}` });
    void ws.connect();
    await tick();
    expect(new URL(fake.last().url).searchParams.get('token')).toBe('t1');
    expect(new URL(fake.last().url).searchParams.has('client_id')).toBe(false);
    fake.last().accept(undefined, 'abc');
    fake.last().drop();
    await tick();
    await tick();
    const url = new URL(fake.last().url);
    expect([url.searchParams.get('client_id'), url.searchParams.get('token')]).toEqual(['abc', 't2']);
    ws.disconnect();
  });

  it('awaits an async token function and retries when it fails', async () => {
    let calls = 0;
    const { ws, fake, errors } = client({
      token: async () => {
        calls += 1;
        if (calls === 1) throw new Error('token service down');
        return 'fresh';
      },
    });
    void ws.connect();
    await vi.waitFor(() => expect(fake.sockets).toHaveLength(1));
    expect(errors).toEqual(['token_failed']);
    expect(new URL(fake.last().url).searchParams.get('token')).toBe('fresh');
    ws.disconnect();
  });

  it('emits disconnect { code, reason, willReconnect } when an open connection closes', async () => {
    const { ws, fake } = client();
    const seen: unknown[] = [];
    ws.on('disconnect', (info) => seen.push(info));
    void ws.connect();
    fake.last().accept();
    fake.last().drop(1013, 'slow consumer');
    await tick();
    fake.last().accept();
    ws.disconnect();
    expect(seen).toEqual([
      { code: 1013, reason: 'slow consumer', willReconnect: true },
      { code: 1000, reason: 'client disconnect', willReconnect: false },
    ]);
  });
});

describe('when the client stops trying', () => {
  it('does not reconnect after disconnect(), and rejects a pending connect()', async () => {
    const { ws, fake } = client();
    const connecting = ws.connect();
    ws.disconnect();
    await expect(connecting).rejects.toMatchObject({ code: 'disconnected' });
    await tick();
    expect(fake.sockets).toHaveLength(1);
    expect(fake.last().closedWith?.code).toBe(1000);
  });

  it('rejects connect() and stops on an HTTP 401 refusal', async () => {
    const { ws, fake, states } = client();
    const connecting = ws.connect();
    fake.last().refuse(401);
    const error = await connecting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ATPWebSocketError);
    expect(error).toMatchObject({ code: 'refused', status: 401 });
    await tick();
    expect(fake.sockets).toHaveLength(1);
    expect(states.at(-1)).toBe('closed');
  });

  it.each([4000, 4001, 4003])('does not reconnect after close code %i', async (code) => {
    const { ws, fake } = client();
    void ws.connect();
    fake.last().accept();
    fake.last().drop(code, 'no');
    await tick();
    expect(fake.sockets).toHaveLength(1);
    expect(ws.state).toBe('closed');
  });

  it('emits reconnect_failed { attempts } after maxReconnectAttempts and rejects connect()', async () => {
    const { ws, fake } = client({ maxReconnectAttempts: 2 });
    const failed: unknown[] = [];
    const attempts: number[] = [];
    ws.on('reconnect_failed', (info) => failed.push(info));
    ws.on('reconnecting', ({ attempt }) => attempts.push(attempt));
    const connecting = ws.connect();
    for (let i = 0; i < 3; i += 1) {
      fake.last().drop();
      await tick();
    }
    await expect(connecting).rejects.toMatchObject({ code: 'reconnect_failed' });
    expect(attempts).toEqual([1, 2]);
    expect(failed).toEqual([{ attempts: 2 }]);
    expect(fake.sockets).toHaveLength(3);
    expect(ws.state).toBe('closed');
  });

  it('does not reconnect when autoReconnect is false', async () => {
    const { ws, fake } = client({ autoReconnect: false });
    const connecting = ws.connect();
    fake.last().drop();
    await expect(connecting).rejects.toMatchObject({ code: 'connect_failed' });
    expect(ws.state).toBe('closed');
  });
});

describe('heartbeat (fake timers)', () => {
  it('pings every pingInterval and drops the connection when nothing answers within pongTimeout', async () => {
    vi.useFakeTimers();
    const { ws, fake, errors } = client({ pingInterval: 25000, pongTimeout: 10000 });
    void ws.connect();
    const socket = fake.last();
    socket.accept();
    await vi.advanceTimersByTimeAsync(25000);
    expect(socket.sentOf('ping')).toHaveLength(1);
    socket.receive({ type: 'pong', payload: { epoch: 'e1', offset: 0 } });
    await vi.advanceTimersByTimeAsync(25000);
    expect(socket.sentOf('ping')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(9999);
    expect(ws.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toContain('pong_timeout');
    expect(socket.closedWith).toBeDefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.sockets).toHaveLength(2);
    ws.disconnect();
  });

  it('counts any inbound frame as proof of life', async () => {
    vi.useFakeTimers();
    const { ws, fake } = client({ pingInterval: 1000, pongTimeout: 500 });
    ws.subscribe('test:progress');
    void ws.connect();
    const socket = fake.last();
    socket.accept();
    for (let i = 1; i <= 10; i += 1) {
      await vi.advanceTimersByTimeAsync(400);
      socket.data(i, i);
    }
    expect(ws.state).toBe('open');
    expect(fake.sockets).toHaveLength(1);
    ws.disconnect();
  });

  it('gives up on a connect that gets no `connected` within connectTimeout', async () => {
    vi.useFakeTimers();
    const { ws, fake, errors } = client({ connectTimeout: 2000 });
    void ws.connect();
    await vi.advanceTimersByTimeAsync(1999);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toEqual(['connect_timeout']);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.sockets).toHaveLength(2);
    ws.disconnect();
  });
});

describe('outgoing queue', () => {
  it('queues send() while not open, flushes on connected, and drops the oldest past maxQueuedMessages', () => {
    const { ws, fake, errors } = client({ maxQueuedMessages: 2 });
    ws.send({ type: 'ping', id: 1 });
    ws.send({ type: 'ping', id: 2 });
    ws.send({ type: 'ping', id: 3 });
    expect(errors).toEqual(['queue_overflow']);
    void ws.connect();
    fake.last().accept();
    expect(
      fake
        .last()
        .sentOf('ping')
        .map((m) => m.id),
    ).toEqual([2, 3]);
    ws.send({ type: 'ping', id: 4 });
    expect(
      fake
        .last()
        .sentOf('ping')
        .map((m) => m.id),
    ).toEqual([2, 3, 4]);
    ws.disconnect();
  });
});

describe('url and environment', () => {
  it('derives ws(s)://host/api/ws/updates from location', () => {
    expect(
      resolveUrl(undefined, {
        protocol: 'https:',
        host: 'atp.example:8443',
        href: 'https://atp.example:8443/runs/1',
      }),
    ).toBe('wss://atp.example:8443/api/ws/updates');
    expect(
      resolveUrl(undefined, { protocol: 'http:', host: 'localhost:8000', href: 'http://localhost:8000/' }),
    ).toBe('ws://localhost:8000/api/ws/updates');
    expect(resolveUrl('/custom/ws', { protocol: 'http:', host: 'h', href: 'http://h/a/b' })).toBe(
      'ws://h/custom/ws',
    );
    expect(resolveUrl('ws://other:1/x')).toBe('ws://other:1/x');
    expect(connectUrl('ws://h/api/ws/updates', 'me', 'a b')).toBe(
      'ws://h/api/ws/updates?client_id=me&token=a+b',
    );
  });

  it('uses the global location and WebSocket when no option is given', async () => {
    const fake = fakeWebSocket();
    vi.stubGlobal('location', { protocol: 'https:', host: 'dash.example', href: 'https://dash.example/' });
    vi.stubGlobal('WebSocket', fake.WebSocket);
    const ws = new ATPWebSocket();
    void ws.connect();
    expect(fake.last().url).toBe('wss://dash.example/api/ws/updates');
    ws.disconnect();
  });

  it('rejects connect() with a clear error without a WebSocket implementation or a url', async () => {
    vi.stubGlobal('WebSocket', undefined);
    await expect(new ATPWebSocket({ url: 'ws://h/x' }).connect()).rejects.toThrow(
      /on Node 20 pass \{ WebSocket \} from 'ws'/,
    );
    await expect(new ATPWebSocket({ WebSocket: fakeWebSocket().WebSocket }).connect()).rejects.toMatchObject({
      code: 'invalid_url',
    });
    expect(() => new ATPWebSocket({ clientId: 'bad id!' })).toThrow(/clientId/);
  });

  it('reconnects at once when the browser comes back online or the page becomes visible', async () => {
    const target = new EventTarget();
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
    vi.stubGlobal('addEventListener', target.addEventListener.bind(target));
    vi.stubGlobal('removeEventListener', target.removeEventListener.bind(target));
    vi.stubGlobal('document', doc);
    const { ws, fake } = client({ retryDelay: () => 60000 });
    void ws.connect();
    fake.last().accept();
    fake.last().drop();
    expect(ws.state).toBe('reconnecting');
    target.dispatchEvent(new Event('online'));
    expect(fake.sockets).toHaveLength(2);
    fake.last().drop();
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(fake.sockets).toHaveLength(3);
    ws.disconnect();
    target.dispatchEvent(new Event('online'));
    expect(fake.sockets).toHaveLength(3);
  });
});
