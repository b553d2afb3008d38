import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  confirmed,
  consecutive,
  log,
  MemoryBroker,
  newClient,
  next,
  progress,
  publishRange,
  record,
  startHub,
  until,
} from './helpers.js';

describe('resume against the real hub', () => {
  it('delivers what was published while away: none lost, none duplicated, in order, consecutive sequences', async () => {
    const { hub, url, cutConnections } = await startHub();
    const ws = newClient(url, { retryDelay: () => 30 });
    const rec = record(ws);
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    await ws.connect();
    await subscribed;
    let published = 0;
    for (let round = 0; round < 4; round += 1) {
      await publishRange(hub, published + 1, published + 10);
      published += 10;
      await rec.waitForData(published);
      cutConnections();
      // Published while the client is away (and, for some, while it resumes): all must arrive once.
      await publishRange(hub, published + 1, published + 25);
      await hub.publish(progress(10_000, 999));
      published += 25;
      await next(ws, 'connect');
    }
    await publishRange(hub, published + 1, published + 5);
    published += 5;
    await rec.waitForData(published);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual(
      Array.from({ length: published }, (_, i) => i + 1),
    );
    expect(consecutive(rec.sequences())).toBe(true);
    expect(rec.gaps).toEqual([]);
    expect(rec.disconnects).toHaveLength(4);
  });

  it('recovers an idle client that had received nothing yet', async () => {
    const { hub, url, cutConnections } = await startHub();
    await publishRange(hub, 1, 5, 1);
    const ws = newClient(url);
    const rec = record(ws);
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    await ws.connect();
    await subscribed;
    cutConnections();
    await publishRange(hub, 1, 3);
    await next(ws, 'connect');
    await rec.waitForData(3);
    expect(rec.data.map((d) => [d.meta.sequence, d.payload.test_execution_id])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(rec.gaps).toEqual([]);
  });

  it('reports sequence_gap when the missed messages are beyond the server history', async () => {
    const { hub, url, cutConnections } = await startHub({ broker: new MemoryBroker({ maxMessages: 10 }) });
    const ws = newClient(url, { retryDelay: () => 50 });
    const rec = record(ws);
    const subscribed = confirmed(ws);
    ws.subscribe('test:completed');
    ws.subscribe('test:progress');
    await ws.connect();
    await subscribed;
    await publishRange(hub, 1, 2);
    await rec.waitForData(2);
    cutConnections();
    await publishRange(hub, 3, 40);
    await next(ws, 'connect');
    await until(() => rec.gaps.length === 1, 'the sequence_gap');
    expect(rec.gaps[0]).toEqual({ expected: 3, received: 4, reason: 'history_truncated' });
    await publishRange(hub, 41, 41);
    await until(() => rec.data.at(-1)?.payload.test_execution_id === 41, 'the live message');
    const sequences = rec.sequences();
    expect(sequences.slice(0, 3)).toEqual([1, 2, 4]);
    expect(consecutive(sequences.slice(2), 4)).toBe(true);
    const ids = rec.data.map((d) => Number(d.payload.test_execution_id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("replays a run from its first event for a subscription with from: 'start'", async () => {
    const { hub, url } = await startHub();
    await publishRange(hub, 1, 20, 7);
    await publishRange(hub, 21, 30, 8);
    const ws = newClient(url);
    const rec = record(ws);
    ws.subscribe('test:progress', { suite_execution_id: 7 }, { from: 'start' });
    await ws.connect();
    await rec.waitForData(20);
    await publishRange(hub, 31, 32, 7);
    await rec.waitForData(22);
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual([
      ...Array.from({ length: 20 }, (_, i) => i + 1),
      31,
      32,
    ]);
    expect(consecutive(rec.sequences())).toBe(true);
  });

  it("continues a from: 'start' replay cut short by a disconnect from its last replayed message", async () => {
    // A small outbound buffer paces the replay, so the cut lands in the middle of it.
    const { hub, url } = await startHub({ softBufferedBytes: 1024, maxBufferedBytes: 1 << 20 });
    await publishRange(hub, 1, 2000, 7);
    const sockets: WebSocket[] = [];
    class TrackedWebSocket extends WebSocket {
      constructor(address: string) {
        super(address);
        sockets.push(this);
      }
    }
    const ws = newClient(url, { WebSocket: TrackedWebSocket as never });
    const rec = record(ws);
    let cut = false;
    ws.on('test_progress', () => {
      if (!cut && rec.data.length >= 50) {
        cut = true;
        sockets[0]?.terminate();
      }
    });
    ws.subscribe('test:progress', { suite_execution_id: 7 }, { from: 'start' });
    await ws.connect();
    await until(() => cut, 'the cut');
    await next(ws, 'connect');
    await publishRange(hub, 2001, 2010, 7);
    await rec.waitForData(2010);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(rec.disconnects).toHaveLength(1);
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual(
      Array.from({ length: 2010 }, (_, i) => i + 1),
    );
    expect(consecutive(rec.sequences())).toBe(true);
    expect(rec.gaps).toEqual([]);
  });

  it("replays no message of a lost epoch to a from: 'start' subscription made after a server restart", async () => {
    const first = await startHub();
    const ws = newClient(first.url);
    await ws.connect();
    const before = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    const old: string[] = [];
    before.on('message', (m) => old.push((m.payload as { message: string }).message));
    await before.ready;
    await first.hub.publish([log(5, 'old1'), log(5, 'old2')]);
    await expect.poll(() => old).toEqual(['old1', 'old2']);
    before.unsubscribe();
    await first.stop();
    const second = await startHub({}, first.port); // memory broker: a new epoch, the old history lost
    await expect.poll(() => ws.state, { timeout: 5000 }).toBe('open');
    await second.hub.publish(log(5, 'new1'));
    const after = ws.subscribe('logs', { suite_execution_id: 5 }, { from: 'start' });
    const got: Array<{ message: string; epoch: string }> = [];
    after.on('message', (m, meta) =>
      got.push({ message: (m.payload as { message: string }).message, epoch: meta.epoch }),
    );
    await after.ready;
    await expect.poll(() => got.length).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(got.map((g) => g.message)).toEqual(['new1']);
  });
});
