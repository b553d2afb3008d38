import type { DataMessage } from '@atp/ws-protocol';
import { GapReason } from '@atp/ws-protocol';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisBroker, type RedisBrokerOptions } from '../index.js';
import { disposer, log, REDIS_URL, uniquePrefix } from './helpers.js';
import { keysFor } from '../streams.js';

function broker(options: RedisBrokerOptions): RedisBroker {
  const created = new RedisBroker({ url: REDIS_URL, ...options });
  disposer.add(() => created.close());
  return created;
}

function progress(test: number, percent: number): DataMessage {
  return {
    type: 'test_progress',
    payload: {
      suite_execution_id: 1,
      test_execution_id: test,
      test_id: `t-${test}`,
      status: 'running',
      progress_percent: percent,
    },
  };
}

function completed(test: number): DataMessage {
  return {
    type: 'test_completed',
    payload: { suite_execution_id: 1, test_execution_id: test, test_id: `t-${test}`, success: true },
  };
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function readAll(from: Parameters<RedisBroker['read']>[0], source: RedisBroker) {
  return source.read(from);
}

describe('history in Redis is bounded in bytes as well as in messages', () => {
  it('trims the oldest history past maxBytes and reads a position before it as a gap', async () => {
    const prefix = uniquePrefix();
    const bounded = broker({ prefix, maxBytes: 20_000, recentMessages: 0, recentWindowMs: 0 });
    const text = 'x'.repeat(900);
    for (let i = 0; i < 10; i++) await bounded.publish(Array.from({ length: 10 }, () => log(1, text)));
    const redis = new Redis(REDIS_URL);
    disposer.add(() => redis.quit());
    await until(async () => Number(await redis.get(keysFor(prefix).bytes)) <= 20_000);
    const kept = await redis.xlen(keysFor(prefix).stream);
    expect(kept).toBeLessThan(25);
    expect(kept).toBeGreaterThan(10);
    const { epoch } = await bounded.position();
    const early = await readAll({ epoch, offset: 5 }, bounded);
    expect(early).toMatchObject({ complete: false, reason: GapReason.HistoryTruncated });
    const start = await readAll('start', bounded);
    expect(start.complete).toBe(true);
    expect(start.entries.length).toBe(kept);
  });

  it('compacts superseded progress first, keeping every completion and the oldest and newest progress per test', async () => {
    const prefix = uniquePrefix();
    // A run published without limits, then one publish through a broker whose limit it passes.
    const writer = broker({ prefix });
    for (let test = 1; test <= 5; test++) {
      for (let batch = 0; batch < 5; batch++)
        await writer.publish(Array.from({ length: 10 }, (_, i) => progress(test, batch * 10 + i)));
      await writer.publish([completed(test)]);
    }
    const bounded = broker({ prefix, maxMessages: 40, recentMessages: 0, recentWindowMs: 0 });
    await bounded.publish([completed(6)]);
    const summary = async () =>
      (await readAll('start', bounded)).entries.map((e) => {
        const payload = e.message.payload as { test_id?: string; progress_percent?: number };
        return [e.message.type, payload.test_id, payload.progress_percent];
      });
    const expected = [
      // The oldest stays with the newest: what came after it (a delta of that test) may need it.
      ...[1, 2, 3, 4, 5].flatMap((test) => [
        ['test_progress', `t-${test}`, 0],
        ['test_progress', `t-${test}`, 49],
        ['test_completed', `t-${test}`, undefined],
      ]),
      ['test_completed', 't-6', undefined],
    ];
    await until(async () => (await summary()).length === expected.length);
    expect(await summary()).toEqual(expected);
    // Nothing was trimmed, only coalesced: a position inside the compacted history is no gap.
    const { epoch } = await bounded.position();
    const middle = await readAll({ epoch, offset: 30 }, bounded);
    expect(middle.complete).toBe(true);
  });

  it('trims by age more than a page of history at a time', async () => {
    const prefix = uniquePrefix();
    const aging = broker({ prefix, maxAgeMs: 400 });
    await aging.subscribe(() => {});
    for (let i = 0; i < 5; i++) await aging.publish(Array.from({ length: 500 }, () => log(1, 'old')));
    const redis = new Redis(REDIS_URL);
    disposer.add(() => redis.quit());
    expect(await redis.xlen(keysFor(prefix).stream)).toBe(2500);
    await until(async () => (await redis.xlen(keysFor(prefix).stream)) === 0);
  });

  it('keeps the oldest progress that is left after the first one was trimmed, ahead of the event after it', async () => {
    const bounded = broker({
      prefix: uniquePrefix(),
      maxMessages: 20,
      recentMessages: 10,
      recentWindowMs: 0,
    });
    await bounded.subscribe(() => {});
    const event: DataMessage = {
      type: 'event',
      payload: {
        suite_execution_id: 1,
        test_execution_id: 7,
        event_type: 'tool_call',
        timestamp: '2026-01-01T00:00:00Z',
        payload: {},
      },
    };
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    // One at a time, each older than the (empty) recent window by the time the limits are enforced.
    const publish = async (message: DataMessage) => {
      await pause(3);
      await bounded.publish([message]);
      await pause(20);
    };
    await publish(progress(7, 1));
    for (let i = 0; i < 14; i++) await publish(log(1, `filler ${i}`));
    await publish(progress(7, 10));
    await publish(event);
    await publish(progress(7, 20));
    await publish(progress(7, 30));
    // Trims the first progress, then makes the others old enough to compact.
    for (let i = 14; i < 24; i++) await publish(log(1, `filler ${i}`));
    await pause(300);
    const kept = (await readAll('start', bounded)).entries.map((e) => e.message);
    const firstProgress = kept.findIndex((m) => m.type === 'test_progress');
    const theEvent = kept.findIndex((m) => m.type === 'event');
    expect(theEvent).toBeGreaterThanOrEqual(0);
    expect(firstProgress).toBeGreaterThanOrEqual(0);
    expect(firstProgress).toBeLessThan(theEvent);
  });
});
