import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { confirmed, disposer, newClient, next, publishRange, record, startHub, until } from './helpers.js';

describe('reconnect against the real hub', () => {
  it('reconnects after the server side cuts the TCP connection, restores subscriptions, continues the sequence', async () => {
    const { hub, url, cutConnections } = await startHub();
    const ws = newClient(url);
    const rec = record(ws);
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    await ws.connect();
    await subscribed;
    await publishRange(hub, 1, 3);
    await rec.waitForData(3);
    const clientId = ws.clientId;
    cutConnections();
    const [info] = await next(ws, 'connect');
    expect(info).toEqual({ clientId, resumed: true });
    expect(rec.disconnects).toEqual([{ code: 1006, reason: '' }]);
    await publishRange(hub, 4, 6);
    await rec.waitForData(6);
    expect(rec.sequences()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rec.gaps).toEqual([]);
  });

  it('reconnects after a server restart on the same port and reports the lost history as sequence_gap', async () => {
    const first = await startHub();
    const ws = newClient(first.url);
    const rec = record(ws);
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress');
    await ws.connect();
    await subscribed;
    await publishRange(first.hub, 1, 2);
    await rec.waitForData(2);
    await first.stop();
    expect(rec.disconnects).toEqual([{ code: 1001, reason: 'server shutting down' }]);
    const second = await startHub({}, first.port);
    await next(ws, 'connect');
    await until(() => rec.gaps.length === 1, 'the sequence_gap');
    expect(rec.gaps).toEqual([{ expected: 3, received: 4, reason: 'epoch_changed' }]);
    await publishRange(second.hub, 3, 4);
    await rec.waitForData(4);
    expect(rec.sequences()).toEqual([1, 2, 4, 5]);
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual([1, 2, 3, 4]);
  });

  it('calls the token function on every connect, so an expired token is replaced', async () => {
    let valid = 'token-1';
    const presented: Array<string | undefined> = [];
    const { url, cutConnections } = await startHub({
      authenticate: (_request, token) => {
        presented.push(token);
        return token === valid ? { id: 'alice' } : null;
      },
    });
    let issued = 0;
    const ws = newClient(url, { token: async () => `token-${++issued}` });
    await ws.connect();
    valid = 'token-2';
    cutConnections();
    await next(ws, 'connect');
    expect(presented).toEqual(['token-1', 'token-2']);
    expect(issued).toBe(2);
    expect(ws.state).toBe('open');
  });

  it('rejects connect() on HTTP 401 and never retries', async () => {
    let attempts = 0;
    const { url } = await startHub({
      authenticate: () => {
        attempts += 1;
        return null;
      },
    });
    const ws = newClient(url, { token: 'expired', retryDelay: () => 0 });
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(error.code));
    await expect(ws.connect()).rejects.toMatchObject({ code: 'refused', status: 401 });
    expect(ws.state).toBe('closed');
    expect(errors).toEqual(['socket_error', 'refused']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(attempts).toBe(1);
  });

  it('does not reconnect after disconnect()', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url, { retryDelay: () => 0 });
    await ws.connect();
    ws.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await hub.clients()).toEqual([]);
    expect(ws.state).toBe('closed');
  });

  it('emits reconnect_failed after maxReconnectAttempts against a port nothing listens on', async () => {
    const { url, stop } = await startHub();
    await stop();
    const ws = newClient(url, { maxReconnectAttempts: 3, retryDelay: () => 5 });
    const attempts: number[] = [];
    ws.on('reconnecting', ({ attempt }) => attempts.push(attempt));
    const failed = next(ws, 'reconnect_failed');
    await expect(ws.connect()).rejects.toMatchObject({ code: 'reconnect_failed' });
    expect(await failed).toEqual([{ attempts: 3 }]);
    expect(attempts).toEqual([1, 2, 3]);
    expect(ws.state).toBe('closed');
  });

  it('detects a dead connection (no pong) and reconnects', async () => {
    // A peer that accepts, greets, and then never answers: what a hung server process looks like.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    disposer.add(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    let connections = 0;
    const received: string[] = [];
    wss.on('connection', (socket) => {
      connections += 1;
      socket.on('message', (data) => received.push(JSON.parse(String(data)).type));
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
    });
    disposer.add(() => {
      for (const socket of wss.clients) socket.terminate();
    });
    const port = (wss.address() as AddressInfo).port;
    const ws = newClient(`ws://127.0.0.1:${port}/api/ws/updates`, { pingInterval: 50, pongTimeout: 100 });
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(error.code));
    await ws.connect();
    const [disconnect] = await next(ws, 'disconnect');
    expect(disconnect).toMatchObject({ code: 1006, willReconnect: true });
    expect(errors).toContain('pong_timeout');
    await next(ws, 'connect');
    expect(connections).toBe(2);
    expect(received.filter((type) => type === 'ping').length).toBeGreaterThanOrEqual(1);
  });

  it('sends identical subscriptions once on the wire and unsubscribes with the last release', async () => {
    const { hub, url } = await startHub();
    const frames: Array<{ type: string; payload?: unknown }> = [];
    const { WebSocket } = await import('ws');
    class RecordingWebSocket extends WebSocket {
      override send(data: string): void {
        frames.push(JSON.parse(data));
        super.send(data);
      }
    }
    const ws = newClient(url, { WebSocket: RecordingWebSocket as never, pingInterval: 0 });
    const rec = record(ws);
    await ws.connect();
    const subscribed = confirmed(ws);
    const a = ws.subscribe('test:progress', { suite_execution_id: [123, 7] });
    const b = ws.subscribe('test:progress', { suite_execution_id: [7, 123] });
    await subscribed;
    a();
    await publishRange(hub, 1, 1);
    await rec.waitForData(1);
    b();
    expect(frames.map((f) => f.type)).toEqual(['subscribe', 'unsubscribe']);
    expect(frames[1]?.payload).toEqual({ topic: 'test:progress', filter: { suite_execution_id: [7, 123] } });
    const barrier = confirmed(ws);
    ws.subscribe('logs');
    await barrier;
    expect((await hub.clients())[0]?.subscriptions).toEqual(['logs']);
  });
});
