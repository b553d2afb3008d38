import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createATPFallbackRouter } from '@atp/ws-server/express';
import { type ATPWebSocketServer, createATPWebSocketServer } from '@atp/ws-server';
import { createFallback, type FallbackOptions, type Transport } from '../fallback.js';
import { ATPWebSocket } from '../index.js';
import { confirmed, disposer, log, next, record, until } from './helpers.js';

type Upgrades = 'pass' | 'refuse' | 'stall';

/**
 * A hub behind an HTTP server that also serves the SSE fallback, with a switch standing in for a
 * proxy in front of it: `pass` lets upgrades through, `refuse` drops them (the connection is cut),
 * `stall` leaves them hanging.
 */
async function startHub() {
  const app = express();
  const server = createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const hub: ATPWebSocketServer = createATPWebSocketServer({ server });
  app.use(createATPFallbackRouter(hub));
  await hub.ready;
  const hubUpgrade = server.listeners('upgrade')[0] as (r: IncomingMessage, s: Duplex, h: Buffer) => void;
  server.removeAllListeners('upgrade');
  const state = { upgrades: 'pass' as Upgrades, attempts: 0 };
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    state.attempts += 1;
    if (state.upgrades === 'pass') hubUpgrade(request, socket, head);
    else if (state.upgrades === 'refuse') socket.destroy();
    // 'stall': nothing answers.
  });
  disposer.add(async () => {
    await hub.close();
    server.closeAllConnections();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    hub,
    state,
    url: `ws://127.0.0.1:${port}/api/ws/updates`,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

function newClient(url: string, fallbackOptions: FallbackOptions = {}) {
  const fallback = createFallback({ WebSocket, timeout: 500, ...fallbackOptions });
  const transports: Transport[] = [];
  fallback.on('transport', (transport) => transports.push(transport));
  const ws = new ATPWebSocket({ url, WebSocket: fallback.WebSocket, retryDelay: () => 20 });
  disposer.add(() => ws.disconnect());
  return { ws, fallback, transports };
}

function publishLogs(hub: ATPWebSocketServer, from: number, to: number) {
  return hub.publish(Array.from({ length: to - from + 1 }, (_, i) => log(7, `line ${from + i}`)));
}

describe('SSE fallback (Node client)', () => {
  it('falls back to SSE when the upgrade is refused, and receives every message', async () => {
    const { hub, state, url } = await startHub();
    state.upgrades = 'refuse';
    const { ws, fallback, transports } = newClient(url);
    const got = record(ws);
    ws.subscribe('logs', { suite_execution_id: 7 });
    await ws.connect();
    await confirmed(ws);
    expect(fallback.transport).toBe('sse');
    expect(transports).toEqual(['sse']);
    expect(state.attempts).toBe(1);
    await publishLogs(hub, 1, 50);
    await got.waitForData(50);
    expect(got.sequences()).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const clients = await hub.clients();
    expect(clients.map((c) => c.transport)).toEqual(['sse']);
  });

  it('falls back when the upgrade stalls past the timeout', async () => {
    const { hub, state, url } = await startHub();
    state.upgrades = 'stall';
    const { ws, fallback } = newClient(url, { timeout: 300 });
    const got = record(ws);
    ws.subscribe('logs', { suite_execution_id: 7 });
    const started = Date.now();
    await ws.connect();
    await confirmed(ws);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(fallback.transport).toBe('sse');
    await publishLogs(hub, 1, 3);
    await got.waitForData(3);
  });

  it('stays on WebSocket when the upgrade works', async () => {
    const { hub, url } = await startHub();
    const { ws, fallback, transports } = newClient(url);
    ws.subscribe('logs', { suite_execution_id: 7 });
    await ws.connect();
    await confirmed(ws);
    expect(fallback.transport).toBe('websocket');
    expect(transports).toEqual(['websocket']);
    expect((await hub.clients()).map((c) => c.transport)).toEqual(['websocket']);
  });

  it('resumes across a switch WebSocket → SSE → WebSocket with no loss and no duplicate', async () => {
    const { hub, state, url } = await startHub();
    const { ws, transports } = newClient(url, { retryWebSocketAfter: 0 });
    const got = record(ws);
    ws.subscribe('logs', { suite_execution_id: 7 });
    await ws.connect();
    await confirmed(ws);
    await publishLogs(hub, 1, 20);
    await got.waitForData(20);

    // A proxy starts blocking WebSocket; the connection drops; messages are published meanwhile.
    state.upgrades = 'refuse';
    const resumed = next(ws, 'connect');
    const cutAt = Date.now();
    ws.reconnect();
    await publishLogs(hub, 21, 60);
    expect((await resumed)[0].resumed).toBe(true);
    expect((await hub.clients()).map((c) => c.transport)).toEqual(['sse']);
    await publishLogs(hub, 61, 80);
    await got.waitForData(80);
    expect(transports).toEqual(['websocket', 'sse']);
    expect(Date.now() - cutAt).toBeLessThan(5000);

    // WebSocket works again: the next connect tries it first (retryWebSocketAfter: 0) and resumes.
    state.upgrades = 'pass';
    const back = next(ws, 'connect');
    ws.reconnect();
    await publishLogs(hub, 81, 100);
    expect((await back)[0].resumed).toBe(true);
    await got.waitForData(100);
    expect((await hub.clients()).map((c) => c.transport)).toEqual(['websocket']);
    expect(transports).toEqual(['websocket', 'sse', 'websocket']);

    const lines = got.data.map((d) => d.payload.message);
    expect(lines).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i + 1}`));
    expect(got.gaps).toEqual([]);
    const sequences = got.sequences();
    expect(new Set(sequences).size).toBe(sequences.length);
    for (let i = 1; i < sequences.length; i++)
      expect(sequences[i]).toBeGreaterThan(sequences[i - 1] as number);
  });

  it('goes straight to SSE after a fallback until retryWebSocketAfter has passed', async () => {
    const { state, url } = await startHub();
    state.upgrades = 'refuse';
    const { ws } = newClient(url, { retryWebSocketAfter: 60_000 });
    ws.subscribe('logs', { suite_execution_id: 7 });
    await ws.connect();
    await confirmed(ws);
    expect(state.attempts).toBe(1);
    const resumed = next(ws, 'connect');
    ws.reconnect();
    await resumed;
    expect(state.attempts).toBe(1);
  });

  it('reports a refused stream (401) as the upgrade refusal it stands for', async () => {
    const app = express();
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const hub = createATPWebSocketServer({
      server,
      authenticate: (_request, token) => (token === 'good' ? { id: 'u' } : null),
    });
    app.use(createATPFallbackRouter(hub));
    await hub.ready;
    server.removeAllListeners('upgrade');
    server.on('upgrade', (_request, socket: Duplex) => socket.destroy());
    disposer.add(async () => {
      await hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/ws/updates`;
    const fallback = createFallback({ WebSocket, timeout: 500 });
    const ws = new ATPWebSocket({
      url,
      WebSocket: fallback.WebSocket,
      token: 'bad',
      autoReconnect: false,
      logger: null,
    });
    disposer.add(() => ws.disconnect());
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(error.message));
    await expect(ws.connect()).rejects.toBeDefined();
    await until(() => errors.some((m) => /401/.test(m)), 'an error naming 401');
  });
});
