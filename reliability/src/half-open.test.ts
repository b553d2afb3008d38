import { createATPWebSocketServer } from '@atp/ws-server';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { disposer, figure, LOCAL_ADDRESSES, percentile, until } from './harness/common.js';

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const SILENT = 200;
const HEALTHY = 100;

describe('half-open connections', () => {
  it('reaps every client that stops answering pings within pingInterval + pingTimeout, and keeps the others', async () => {
    const hub = createATPWebSocketServer({ port: 0, pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT });
    disposer.add(() => hub.close());
    await hub.ready;
    const url = `ws://127.0.0.1:${hub.address()?.port}/api/ws/updates`;
    const open = (autoPong: boolean, i: number) =>
      new Promise<{ ws: WebSocket; openedAt: number }>((resolve, reject) => {
        const localAddress = LOCAL_ADDRESSES[i % LOCAL_ADDRESSES.length];
        // autoPong: false answers no ping frame: to the server the peer is gone though its socket is open.
        const ws = new WebSocket(url, { autoPong, localAddress });
        disposer.add(() => ws.terminate());
        ws.once('open', () => resolve({ ws, openedAt: performance.now() }));
        ws.once('error', reject);
      });
    const silent = await Promise.all(Array.from({ length: SILENT }, (_, i) => open(false, i)));
    const healthy = await Promise.all(Array.from({ length: HEALTHY }, (_, i) => open(true, i)));
    const reapedAfter = await Promise.all(
      silent.map(
        ({ ws, openedAt }) =>
          new Promise<number>((resolve) => ws.once('close', () => resolve(performance.now() - openedAt))),
      ),
    );
    // Give the healthy ones one more full ping round to prove they are kept.
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL + PING_TIMEOUT));
    const bound = PING_INTERVAL + PING_TIMEOUT;
    figure('half-open', {
      silent: SILENT,
      healthy: HEALTHY,
      pingInterval_ms: PING_INTERVAL,
      pingTimeout_ms: PING_TIMEOUT,
      reaped_p50_ms: percentile(reapedAfter, 50),
      reaped_max_ms: Math.max(...reapedAfter),
      bound_ms: bound,
    });
    // A little slack for timer granularity and the time between the server's accept and our `open`.
    expect(Math.max(...reapedAfter)).toBeLessThanOrEqual(bound + 100);
    expect(healthy.every(({ ws }) => ws.readyState === WebSocket.OPEN)).toBe(true);
    await until(
      async () => (await hub.clients()).length === HEALTHY,
      'the hub to list only the healthy clients',
    );
    expect(await hub.metrics()).toMatch(/atp_ws_connections 100\b/);
  });
});
