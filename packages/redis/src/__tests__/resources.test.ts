// Live resources through a Redis restart: whether the broker keeps its epoch or starts a new one
// (the client then refetches), the client's resource ends equal to the server's state.
import { RedisServer, runMessages, runOptions, serveRuns } from '@atp/test-utils';
import { ATPWebSocket, openResource } from '@atp/ws-client';
import { createATPWebSocketServer } from '@atp/ws-server';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { RedisBroker } from '../index.js';
import { disposer, uniquePrefix } from './helpers.js';

describe('live resources on the Redis broker', () => {
  it('ends equal to the server state after a Redis restart under a live resource', async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.kill());
    const broker = new RedisBroker({ url: redis.url, prefix: uniquePrefix(), blockMs: 100 });
    const hub = createATPWebSocketServer({ port: 0, broker });
    disposer.add(async () => {
      await hub.close();
      await broker.close();
    });
    await hub.ready;
    const runs = serveRuns(hub);
    const ws = new ATPWebSocket({
      url: `ws://127.0.0.1:${hub.address()?.port}/api/ws/updates`,
      WebSocket,
      retryDelay: () => 50,
    });
    disposer.add(() => ws.disconnect());
    await ws.connect();
    await hub.publish(runMessages(1, 0, 100));
    const handle = openResource(ws, 'run', 1, runOptions(1));
    disposer.add(() => handle.close());
    const poll = { timeout: 20_000, interval: 50 };
    await expect.poll(() => runs.get(1)?.completed.length, poll).toBe(50);
    await expect.poll(() => handle.data, poll).toEqual(runs.get(1));
    await redis.restart();
    // Publishing is refused until the broker is back; then the new epoch's messages flow.
    await expect
      .poll(
        async () =>
          hub.publish(runMessages(1, 1000, 10)).then(
            () => true,
            () => false,
          ),
        poll,
      )
      .toBe(true);
    await hub.publish(runMessages(1, 2000, 30));
    await expect.poll(() => runs.get(1)?.completed.includes(2000 + 14), poll).toBe(true);
    await expect.poll(() => handle.status, poll).toBe('live');
    await expect.poll(() => handle.data, poll).toEqual(runs.get(1));
    expect(handle.data?.completed.length).toBeGreaterThanOrEqual(70);
  });
});
