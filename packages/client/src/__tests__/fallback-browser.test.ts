import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromiumExecutable } from '@atp/test-utils';
import express from 'express';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createATPFallbackRouter } from '@atp/ws-server/express';
import { createATPWebSocketServer } from '@atp/ws-server';
import { disposer, publishRange } from './helpers.js';

const mainScript = fileURLToPath(new URL('../../dist/browser.global.js', import.meta.url));
const fallbackScript = fileURLToPath(new URL('../../dist/fallback.global.js', import.meta.url));

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>ATP</title>
<script src="/static/v2/js/websocket.js"></script>
<script src="/static/v2/js/websocket-fallback.js"></script></head>
<body><script>
  window.received = [];
  window.gaps = [];
  window.transports = [];
  const fallback = ATPWebSocketFallback.createFallback({ timeout: 2000, retryWebSocketAfter: 0 });
  fallback.on('transport', (transport) => window.transports.push(transport));
  window.fallback = fallback;
  const ws = new ATPWebSocket({ reconnectInterval: 20, jitter: 0, WebSocket: fallback.WebSocket });
  window.ws = ws;
  ws.on('test_progress', (data, meta) => window.received.push([data.test_execution_id, meta.sequence]));
  ws.on('sequence_gap', (gap) => window.gaps.push(gap));
  ws.subscribe('test:progress', { suite_execution_id: 123 });
  const subscribed = new Promise((resolve) => {
    const off = ws.on('subscribed', () => {
      off();
      resolve();
    });
  });
  window.connected = ws.connect().then(() => subscribed);
</script></body></html>`;

interface PageGlobals {
  received: Array<[number, number]>;
  gaps: unknown[];
  transports: string[];
  connected: Promise<void>;
  fallback: { transport: string };
}

async function serve() {
  chromiumExecutable();
  for (const file of [mainScript, fallbackScript]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`pnpm --filter @atp/ws-client build\``);
  }
  const app = express();
  app.get('/', (_request, response) => {
    response.type('html').send(page);
  });
  app.get('/static/v2/js/websocket.js', (_request, response) => {
    response.type('js').send(readFileSync(mainScript));
  });
  app.get('/static/v2/js/websocket-fallback.js', (_request, response) => {
    response.type('js').send(readFileSync(fallbackScript));
  });
  const server = createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const hub = createATPWebSocketServer({ server });
  app.use(createATPFallbackRouter(hub));
  disposer.add(async () => {
    await hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await hub.ready;
  return { hub, sockets, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function launch() {
  const browser = await chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
    ],
  });
  disposer.add(() => browser.close());
  const tab = await browser.newPage();
  const pageErrors: string[] = [];
  tab.on('pageerror', (error) => pageErrors.push(String(error)));
  return { tab, pageErrors };
}

describe('the SSE fallback in headless Chromium', () => {
  it('receives updates over SSE when the page cannot open a WebSocket', async () => {
    const { hub, origin } = await serve();
    const { tab, pageErrors } = await launch();
    let upgrades = 0;
    // Every WebSocket the page opens is intercepted and closed before reaching the server, as a
    // proxy that refuses upgrades would.
    await tab.routeWebSocket(/\/api\/ws\/updates/, (ws) => {
      upgrades += 1;
      ws.close({ code: 1011, reason: 'blocked by the test' });
    });
    await tab.goto(origin);
    await tab.evaluate(() => (globalThis as unknown as PageGlobals).connected);
    expect(upgrades).toBe(1);
    expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).fallback.transport)).toBe('sse');
    await publishRange(hub, 1, 5);
    await tab.waitForFunction(() => (globalThis as unknown as PageGlobals).received.length === 5);
    expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).received)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    expect((await hub.clients()).map((c) => c.transport)).toEqual(['sse']);
    expect(pageErrors).toEqual([]);
  });

  it('resumes across the fallback with no loss and no duplicate when WebSocket gets blocked', async () => {
    const { hub, origin, sockets } = await serve();
    const { tab, pageErrors } = await launch();
    let blocked = false;
    await tab.routeWebSocket(/\/api\/ws\/updates/, (ws) => {
      if (blocked) ws.close({ code: 1011, reason: 'blocked by the test' });
      else ws.connectToServer();
    });
    await tab.goto(origin);
    await tab.evaluate(() => (globalThis as unknown as PageGlobals).connected);
    expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).fallback.transport)).toBe(
      'websocket',
    );
    await publishRange(hub, 1, 3);
    await tab.waitForFunction(() => (globalThis as unknown as PageGlobals).received.length === 3);

    // WebSocket becomes blocked and the connection drops: the page falls back and resumes.
    blocked = true;
    for (const socket of sockets) socket.destroy();
    await publishRange(hub, 4, 8);
    await tab.waitForFunction(() => (globalThis as unknown as PageGlobals).received.length >= 8, undefined, {
      timeout: 10000,
    });
    await publishRange(hub, 9, 10);
    await tab.waitForFunction(() => (globalThis as unknown as PageGlobals).received.length >= 10, undefined, {
      timeout: 10000,
    });
    const state = await tab.evaluate(() => ({
      received: (globalThis as unknown as PageGlobals).received,
      gaps: (globalThis as unknown as PageGlobals).gaps,
      transports: (globalThis as unknown as PageGlobals).transports,
    }));
    expect(state.received).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]));
    expect(state.gaps).toEqual([]);
    expect(state.transports).toEqual(['websocket', 'sse']);
    expect(pageErrors).toEqual([]);
  });
});
