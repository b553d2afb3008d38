// A `from` subscription made after the stream lost its history under a live connection: the client's
// local history of the lost epoch must not be replayed to it.
import { RedisServer } from '@atp/test-utils';
import { ATPWebSocket } from '@atp/ws-client';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { disposer, log, startRedisHub, uniquePrefix } from './helpers.js';

describe('from subscriptions across an epoch change under a live connection', () => {
  it("replays no message of the lost epoch to a from: 'start' subscription made after Redis restarted empty", async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.kill());
    const { hub, url } = await startRedisHub({ url: redis.url, prefix: uniquePrefix(), blockMs: 100 });
    const ws = new ATPWebSocket({
      url,
      WebSocket,
      retryDelay: () => 50,
    });
    disposer.add(() => ws.disconnect());
    const disconnects: number[] = [];
    ws.on('disconnect', ({ code }) => disconnects.push(code));
    await ws.connect();
    const before = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    const old: string[] = [];
    before.on('message', (m) => old.push((m.payload as { message: string }).message));
    await before.ready;
    await hub.publish([log(5, 'old1'), log(5, 'old2')]);
    await expect.poll(() => old).toEqual(['old1', 'old2']);
    before.unsubscribe();
    await redis.restart();
    await expect
      .poll(
        async () =>
          hub.publish(log(5, 'new1')).then(
            () => true,
            () => false,
          ),
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const after = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    const got: string[] = [];
    after.on('message', (m, meta) =>
      got.push(`${(m.payload as { message: string }).message}@${meta.epoch}:${meta.offset}`),
    );
    await after.ready;
    await new Promise((r) => setTimeout(r, 500));
    expect(got.map((g) => g.split('@')[0])).toEqual(['new1']);
  }, 40_000);
});
