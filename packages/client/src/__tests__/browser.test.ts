import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromiumExecutable } from '@atp/test-utils';
import { createATPWebSocketServer } from '@atp/ws-server';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { disposer, publishRange } from './helpers.js';

const script = fileURLToPath(new URL('../../dist/browser.global.js', import.meta.url));

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>ATP</title>
<script src="/static/v2/js/websocket.js"></script></head>
<body><script>
  window.received = [];
  window.gaps = [];
  window.states = [];
  const ws = new ATPWebSocket({ reconnectInterval: 20, jitter: 0 });
  window.ws = ws;
  ws.on('test_progress', (data, meta) => window.received.push([data.test_execution_id, meta.sequence]));
  ws.on('sequence_gap', (gap) => window.gaps.push(gap));
  ws.on('state', ({ to }) => window.states.push(to));
  ws.subscribe('test:progress', { suite_execution_id: 123 });
  const subscribed = new Promise((resolve) => {
    const off = ws.on('subscribed', () => {
      off();
      resolve();
    });
  });
  window.connected = ws.connect().then(() => subscribed);
</script></body></html>`;

/** Serves the page and the IIFE build from the HTTP server the hub attaches to. */
async function serve() {
  chromiumExecutable(); // throws, saying what to install, when there is no browser
  if (!existsSync(script))
    throw new Error(`${script} is missing: run \`pnpm --filter @atp/ws-client build\``);
  const server = createServer((request, response) => {
    if (request.url === '/static/v2/js/websocket.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(script));
    } else if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html' }).end(page);
    } else {
      response.writeHead(404).end();
    }
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  disposer.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  disposer.add(() => server.closeAllConnections());
  const hub = createATPWebSocketServer({ server });
  disposer.add(() => hub.close());
  await hub.ready;
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { hub, origin, sockets };
}

async function openPage(origin: string) {
  const browser = await chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  disposer.add(() => browser.close());
  const tab = await browser.newPage();
  const pageErrors: string[] = [];
  tab.on('pageerror', (error) => pageErrors.push(String(error)));
  await tab.goto(origin);
  await tab.evaluate(() => (globalThis as unknown as { connected: Promise<void> }).connected);
  return { tab, pageErrors };
}

describe('the IIFE build in headless Chromium', () => {
  it('defines ATPWebSocket from a <script> tag, connects to the auto-detected URL, and receives updates', async () => {
    const { hub, origin, sockets } = await serve();
    const { tab, pageErrors } = await openPage(origin);
    expect(
      await tab.evaluate(() => typeof (globalThis as unknown as { ATPWebSocket: unknown }).ATPWebSocket),
    ).toBe('function');
    expect(
      await tab.evaluate(
        () =>
          (globalThis as unknown as { ATPWebSocket: { GapReason: { EpochChanged: string } } }).ATPWebSocket
            .GapReason.EpochChanged,
      ),
    ).toBe('epoch_changed');

    await publishRange(hub, 1, 3);
    await tab.waitForFunction(() => (globalThis as unknown as { received: unknown[] }).received.length === 3);

    // Cut the TCP connections: the page reconnects by itself and resumes what it missed.
    for (const socket of sockets) socket.destroy();
    await publishRange(hub, 4, 6);
    await tab.waitForFunction(
      () => (globalThis as unknown as { received: unknown[] }).received.length === 6,
      undefined,
      {
        timeout: 10000,
      },
    );
    const state = await tab.evaluate(() => {
      const w = globalThis as unknown as { received: unknown[]; gaps: unknown[]; states: string[] };
      return { received: w.received, gaps: w.gaps, states: w.states };
    });
    expect(state.received).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
      [6, 6],
    ]);
    expect(state.gaps).toEqual([]);
    expect(state.states).toEqual(['connecting', 'open', 'reconnecting', 'connecting', 'open']);
    await tab.evaluate(() => (globalThis as unknown as { ws: { disconnect(): void } }).ws.disconnect());
    expect(await tab.evaluate(() => (globalThis as unknown as { ws: { state: string } }).ws.state)).toBe(
      'closed',
    );
    expect(pageErrors).toEqual([]);
  });
});
