// Live resources through a Redis restart: whether the broker keeps its epoch or starts a new one
// (the client then refetches), the client's resource ends equal to the server's state.
import { RedisServer, runMessages, runOptions, serveRuns } from '@atp/test-utils';
import { ATPWebSocket, openResource } from '@atp/ws-client';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { disposer, startRedisHub, uniquePrefix } from './helpers.js';

describe('live resources on the Redis broker', () => {
  it('ends equal to the server state after a Redis restart under a live resource', async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.kill());
    const { hub, url } = await startRedisHub({ url: redis.url, prefix: uniquePrefix(), blockMs: 100 });
    const runs = serveRuns(hub);
    const ws = new ATPWebSocket({
      url,
      WebSocket,
      retryDelay: () => 50,
    });
    disposer.add(() => ws.disconnect());
    await ws.connect();
    await hub.publish(runMessages(1, 0, 100));
    const handle = openResource(ws, 'run', 1, runOptions(1));
    disposer.add(() => handle.close());
    const resyncs: string[] = [];
    handle.on('resync', (reason) => resyncs.push(reason));
    const poll = { timeout: 20_000, interval: 50 };
    await expect.poll(() => runs.get(1)?.completed.length, poll).toBe(50);
    await expect.poll(() => handle.data, poll).toEqual(runs.get(1));
    const before = handle.position;
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
    // The restarted Redis kept nothing (no RDB file): its stream is a new epoch, announced by a
    // sequence_gap, and the handle took a new snapshot in it rather than going on from the old one's state.
    expect(resyncs).toContain('gap');
    expect(handle.position?.epoch).toBeDefined();
    expect(handle.position?.epoch).not.toBe(before?.epoch);
  });

  it("a process started later follows from 'start': its state is the first process's at the same position", async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.kill());
    const prefix = uniquePrefix();
    const first = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const seenFirst: string[] = [];
    first.hub.resources.follow((messages) => {
      for (const message of messages) seenFirst.push(JSON.stringify(message));
    });
    await first.hub.publish(runMessages(1, 0, 1500)); // more than one page of history
    const second = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const seenSecond: string[] = [];
    second.hub.resources.follow(
      (messages) => {
        for (const message of messages) seenSecond.push(JSON.stringify(message));
      },
      { from: 'start' },
    );
    await first.hub.publish(runMessages(1, 5000, 40));
    const poll = { timeout: 20_000, interval: 50 };
    await expect.poll(() => seenSecond.length, poll).toBe(1540);
    await expect.poll(() => seenFirst.length, poll).toBe(1540);
    expect(seenSecond).toEqual(seenFirst);
  });

  it('a handle moved to a process already in the new epoch after a quiet Redis restart goes live without a new message', async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.kill());
    const prefix = uniquePrefix();
    const first = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    serveRuns(first.hub);
    let target = first.url;
    const ws = new ATPWebSocket({ url: () => target, WebSocket, retryDelay: () => 50 });
    disposer.add(() => ws.disconnect());
    await ws.connect();
    const handle = openResource(ws, 'run', 1, { ...runOptions(1), retryDelay: () => 100 });
    disposer.add(() => handle.close());
    await first.hub.publish(runMessages(1, 0, 10));
    const poll = { timeout: 15_000, interval: 50 };
    await expect.poll(() => handle.data?.completed.length, poll).toBe(5);
    const before = handle.position?.epoch;
    await redis.restart(); // empty: the stream starts over, and nothing is published after it
    const second = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const runs = serveRuns(second.hub);
    target = second.url;
    await first.hub.close(); // the connection moves to the second process (a resume there)
    await expect.poll(() => handle.position?.epoch, poll).not.toBe(before);
    await expect.poll(() => handle.status, poll).toBe('live');
    expect(handle.data).toEqual(runs.get(1) ?? { completed: [], progress: {} });
  });

  it('a handle fetching from a process already in the new epoch goes live once its own connection learns it (a pong)', async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.kill());
    const prefix = uniquePrefix();
    const first = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    serveRuns(first.hub);
    await first.hub.publish(runMessages(1, 0, 10));
    await redis.restart(); // empty, and nothing is published after it
    const second = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const runs = serveRuns(second.hub);
    const ws = new ATPWebSocket({ url: first.url, WebSocket, pingInterval: 300 });
    disposer.add(() => ws.disconnect());
    await ws.connect();
    // Snapshots from the other process (behind a load balancer, say), in the epoch the first one
    // moves to once it reads the restarted stream.
    const handle = openResource(ws, 'run', 1, {
      ...runOptions(1),
      retryDelay: () => 100,
      fetch: (kind, id) => second.hub.resources.snapshot(kind, id),
    });
    disposer.add(() => handle.close());
    const poll = { timeout: 15_000, interval: 50 };
    await expect.poll(() => handle.status, poll).toBe('live');
    expect(handle.data).toEqual(runs.get(1) ?? { completed: [], progress: {} });
  });
});
