import { GapReason } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '../index.js';
import { connectOver as connect, log, progress, startHub } from './helpers.js';

type Position = { epoch: string; offset: number };

describe('resume after a reconnect', () => {
  it('replays every missed message in order, once, with sequences continuing', async () => {
    const { url, hub } = await startHub();
    const first = await connect(url, 'client_id=resumer');
    await first.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await hub.publish([log(1, 'info', 'a'), log(2, 'info', 'other suite'), log(1, 'info', 'b')]);
    const seen = await first.waitForData(2);
    const last = seen[1] as { sequence: number; epoch: string; offset: number };
    await first.close();

    await hub.publish([log(1, 'info', 'c'), log(2, 'info', 'other'), log(1, 'info', 'd')]);
    const second = await connect(url, 'client_id=resumer');
    const resumed = await second.request('resume', {
      epoch: last.epoch,
      offset: last.offset,
      sequence: last.sequence,
      subscriptions: [{ topic: 'logs', filter: { suite_execution_id: 1 } }],
    });
    expect(resumed.payload).toMatchObject({ recovered: true, complete: true, replayed: 2, next_sequence: 3 });
    await hub.publish(log(1, 'info', 'e'));
    const data = await second.waitForData(3);
    expect(data.map((m) => [m.payload.message, m.sequence])).toEqual([
      ['c', 3],
      ['d', 4],
      ['e', 5],
    ]);
  });

  it('recovers a client that had received nothing yet, using the position of its subscribed ack', async () => {
    const { url, hub } = await startHub();
    await hub.publish(log(1, 'info', 'before'));
    const first = await connect(url);
    const ack = await first.request('subscribe', { topic: 'logs' });
    await first.close();
    await hub.publish(log(1, 'info', 'while away'));
    const second = await connect(url);
    const resumed = await second.request('resume', {
      epoch: ack.payload.epoch,
      offset: ack.payload.offset,
      sequence: 0,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({ recovered: true, replayed: 1 });
    expect((await second.waitForData(1)).map((m) => [m.payload.message, m.sequence])).toEqual([
      ['while away', 1],
    ]);
  });

  it('recovers an idle client whose position is refreshed by pong, though its history was trimmed', async () => {
    const broker = new MemoryBroker({ maxMessages: 10, recentMessages: 0, recentWindowMs: 0 });
    const { url, hub } = await startHub({ broker });
    const first = await connect(url);
    await first.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    // Minutes of traffic for other suites: the idle client's own ack position falls out of history.
    for (let i = 0; i < 5; i++)
      await hub.publish(Array.from({ length: 10 }, (_, j) => log(2, 'info', `noise ${i}-${j}`)));
    const pong = await first.request('ping', {});
    await first.close();
    await hub.publish(log(1, 'info', 'missed'));
    const second = await connect(url);
    const resumed = await second.request('resume', {
      ...(pong.payload as Position),
      sequence: 0,
      subscriptions: [{ topic: 'logs', filter: { suite_execution_id: 1 } }],
    });
    expect(resumed.payload).toMatchObject({ recovered: true, replayed: 1 });
    expect((await second.waitForData(1))[0]?.payload.message).toBe('missed');
  });

  it('does not duplicate across repeated recoveries', async () => {
    const { url, hub } = await startHub();
    let position: Position & { sequence: number } = { epoch: '', offset: 0, sequence: 0 };
    const received: string[] = [];
    const first = await connect(url, 'client_id=again');
    const ack = await first.request('subscribe', { topic: 'logs' });
    position = { epoch: ack.payload.epoch as string, offset: ack.payload.offset as number, sequence: 0 };
    await first.close();
    for (let round = 0; round < 4; round++) {
      await hub.publish([log(1, 'info', `r${round}-1`), log(1, 'info', `r${round}-2`)]);
      const client = await connect(url, 'client_id=again');
      await client.request('resume', { ...position, subscriptions: [{ topic: 'logs' }] });
      const data = await client.waitForData(2);
      await client.request('ping', {});
      for (const m of client.data()) received.push(`${m.payload.message}#${m.sequence}`);
      const last = data.at(-1) as unknown as Position & { sequence: number };
      position = { epoch: last.epoch, offset: last.offset, sequence: last.sequence };
      await client.close();
    }
    expect(received).toEqual([
      'r0-1#1',
      'r0-2#2',
      'r1-1#3',
      'r1-2#4',
      'r2-1#5',
      'r2-2#6',
      'r3-1#7',
      'r3-2#8',
    ]);
  });

  it('reports a gap when the history was trimmed, skipping one sequence number', async () => {
    const broker = new MemoryBroker({ maxMessages: 5, recentMessages: 0, recentWindowMs: 0 });
    const { url, hub } = await startHub({ broker });
    const client = await connect(url);
    const ack = await client.request('subscribe', { topic: 'logs' });
    await client.close();
    await hub.publish(Array.from({ length: 20 }, (_, i) => log(1, 'info', `m${i}`)));
    const again = await connect(url);
    const resumed = await again.request('resume', {
      epoch: ack.payload.epoch,
      offset: ack.payload.offset,
      sequence: 7,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({
      recovered: false,
      complete: false,
      reason: GapReason.HistoryTruncated,
      next_sequence: 9,
    });
    const replayed = resumed.payload.replayed as number;
    expect(replayed).toBeGreaterThan(0);
    const data = await again.waitForData(replayed);
    expect(data[0]?.sequence).toBe(9);
    expect(data.at(-1)?.payload.message).toBe('m19');
  });

  it('reports epoch_changed after a restart of a single process', async () => {
    const first = await startHub();
    const client = await connect(first.url);
    const ack = await client.request('subscribe', { topic: 'logs' });
    await first.hub.close();
    const second = await startHub();
    await second.hub.publish(log(1, 'info', 'new life'));
    const again = await connect(second.url);
    const resumed = await again.request('resume', {
      epoch: ack.payload.epoch,
      offset: ack.payload.offset,
      sequence: 3,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({
      recovered: false,
      reason: GapReason.EpochChanged,
      replayed: 1,
      next_sequence: 5,
    });
    expect((await again.waitForData(1))[0]).toMatchObject({ sequence: 5, payload: { message: 'new life' } });
  });

  it('delivers live messages published during a replay after it, in order', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    const ack = await client.request('subscribe', { topic: 'logs' });
    await client.close();
    await hub.publish(Array.from({ length: 200 }, (_, i) => log(1, 'info', `old ${i}`)));
    const again = await connect(url);
    again.send({
      type: 'resume',
      payload: {
        epoch: ack.payload.epoch,
        offset: ack.payload.offset,
        sequence: 0,
        subscriptions: [{ topic: 'logs' }],
      },
    });
    await hub.publish(Array.from({ length: 50 }, (_, i) => log(1, 'info', `live ${i}`)));
    const data = await again.waitForData(250);
    expect(data.map((m) => m.sequence)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(data.map((m) => m.offset)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
  });

  it('refuses a resume after the connection already subscribed', async () => {
    const { url } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs' });
    const refused = await client.request('resume', { epoch: 'x', offset: 0, sequence: 0, subscriptions: [] });
    expect(refused.payload).toMatchObject({ code: 'invalid_message' });
  });
});

describe('whole-run replay', () => {
  it('replays the history of one suite from its first event, then live', async () => {
    const { url, hub } = await startHub();
    await hub.publish([
      log(1, 'info', 'run start'),
      log(2, 'info', 'other'),
      progress(1, 10, 50),
      log(1, 'error', 'x'),
    ]);
    const late = await connect(url);
    const ack = await late.request('subscribe', {
      topic: 'logs',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(ack.payload).toMatchObject({ history: { replayed: 2, complete: true } });
    await hub.publish(log(1, 'info', 'live'));
    const data = await late.waitForData(3);
    expect(data.map((m) => [m.payload.message, m.sequence])).toEqual([
      ['run start', 1],
      ['x', 2],
      ['live', 3],
    ]);
  });

  it('does not repeat history the connection already received through another subscription', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs', filter: { level: 'error' } });
    await hub.publish([log(1, 'info', 'i1'), log(1, 'error', 'e1'), log(1, 'info', 'i2')]);
    await client.waitForData(1);
    const ack = await client.request('subscribe', {
      topic: 'logs',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(ack.payload).toMatchObject({ history: { replayed: 2, complete: true } });
    const data = await client.waitForData(3);
    expect(data.map((m) => m.payload.message)).toEqual(['e1', 'i1', 'i2']);
  });

  it('keeps the oldest and the newest progress per test and every completion after compaction', async () => {
    let now = 0;
    const broker = new MemoryBroker({
      maxMessages: 40,
      recentMessages: 5,
      recentWindowMs: 1000,
      now: () => now,
    });
    const { url, hub } = await startHub({ broker });
    for (let step = 1; step <= 10; step++) {
      await hub.publish([progress(1, 1, step * 10), progress(1, 2, step * 10)]);
    }
    await hub.publish([
      {
        type: 'test_completed',
        payload: { suite_execution_id: 1, test_execution_id: 1, test_id: 't1', success: true },
      },
    ]);
    now = 10_000;
    // Push past the limit so that compaction runs: the old progress steps are superseded.
    await hub.publish(Array.from({ length: 20 }, (_, i) => log(2, 'info', `noise ${i}`)));
    expect(broker.size).toBeLessThan(40);
    const late = await connect(url);
    const ack = await late.request('subscribe', {
      topic: 'test:progress',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    // The steps in between are gone; the first of each test stays (it may be what makes the test known).
    expect(ack.payload).toMatchObject({ history: { complete: true, replayed: 4 } });
    const data = await late.waitForData(4);
    expect(data.map((m) => [m.payload.test_execution_id, m.payload.progress_percent])).toEqual([
      [1, 10],
      [2, 10],
      [1, 100],
      [2, 100],
    ]);
    const completions = await late.request('subscribe', { topic: 'test:completed', from: 'start' });
    expect(completions.payload).toMatchObject({ history: { replayed: 1 } });
  });
});
