import { RedisServer } from '@atp/test-utils';
import { GapReason, ProtocolError } from '@atp/ws-protocol';
import { BrokerUnavailableError } from '@atp/ws-server';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisPublisher } from '../index.js';
import { connect, disposer, log, REDIS_URL, requireRedis, startRedisHub, uniquePrefix } from './helpers.js';

beforeAll(() => requireRedis());

describe('RedisBroker across hubs', () => {
  it('delivers a message published on one hub to clients of every hub, once, in order', async () => {
    const prefix = uniquePrefix();
    const a = await startRedisHub({ prefix });
    const b = await startRedisHub({ prefix });
    const onA = await connect(a.url);
    const onB = await connect(b.url);
    await onA.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await onB.request('subscribe', { topic: 'logs' });
    await a.hub.publish([log(1, 'a1'), log(2, 'a2')]);
    await b.hub.publish([log(1, 'b1')]);
    await a.hub.publish([log(1, 'a3')]);
    expect((await onA.waitForData(3)).map((m) => [m.payload.message, m.sequence])).toEqual([
      ['a1', 1],
      ['b1', 2],
      ['a3', 3],
    ]);
    expect((await onB.waitForData(4)).map((m) => m.payload.message)).toEqual(['a1', 'a2', 'b1', 'a3']);
  });

  it('lets a client resume on another hub with every missed message and no duplicate', async () => {
    const prefix = uniquePrefix();
    const a = await startRedisHub({ prefix });
    const b = await startRedisHub({ prefix });
    const first = await connect(a.url, 'client_id=mover');
    await first.request('subscribe', { topic: 'logs' });
    await a.hub.publish([log(1, 'one'), log(1, 'two')]);
    const seen = await first.waitForData(2);
    const last = seen[1] as unknown as { epoch: string; offset: number; sequence: number };
    await first.close();
    await b.hub.publish([log(1, 'three'), log(1, 'four')]);
    const second = await connect(b.url, 'client_id=mover');
    const resumed = await second.request('resume', {
      epoch: last.epoch,
      offset: last.offset,
      sequence: last.sequence,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({ recovered: true, replayed: 2, next_sequence: 3 });
    await a.hub.publish(log(1, 'five'));
    expect((await second.waitForData(3)).map((m) => [m.payload.message, m.sequence])).toEqual([
      ['three', 3],
      ['four', 4],
      ['five', 5],
    ]);
  });

  it('lists the clients of every hub, with the hub holding each', async () => {
    const prefix = uniquePrefix();
    const a = await startRedisHub({ prefix });
    const b = await startRedisHub({ prefix });
    await connect(a.url, 'client_id=on-a');
    await connect(b.url, 'client_id=on-b');
    await expect
      .poll(async () => (await a.hub.clients()).map((c) => [c.client_id, c.server_id]).sort())
      .toEqual([
        ['on-a', a.hub.serverId],
        ['on-b', b.hub.serverId],
      ]);
  });

  it('drops the clients of a dead process from the listing within the presence TTL', async () => {
    const prefix = uniquePrefix();
    const a = await startRedisHub({ prefix, presenceTtlMs: 300 });
    const b = await startRedisHub({ prefix, presenceTtlMs: 300 });
    await connect(b.url, 'client_id=doomed');
    await expect.poll(async () => (await a.hub.clients()).map((c) => c.client_id)).toContain('doomed');
    // Stop b's broker without a goodbye, as a killed process would: its presence key just expires.
    await b.broker.close();
    await expect
      .poll(async () => (await a.hub.clients()).map((c) => c.client_id), { timeout: 2000 })
      .not.toContain('doomed');
  });

  it('lets only the principal that owns a client_id resume it on another process', async () => {
    const prefix = uniquePrefix();
    const authenticate = (_request: unknown, token: string | undefined) => (token ? { id: token } : null);
    const a = await startRedisHub({ prefix }, { authenticate });
    const b = await startRedisHub({ prefix }, { authenticate });
    const alice = await connect(a.url, 'client_id=shared-id&token=alice');
    await alice.close();
    await expect(connect(b.url, 'client_id=shared-id&token=mallory')).rejects.toMatchObject({
      statusCode: 403,
    });
    expect((await connect(b.url, 'client_id=shared-id&token=alice')).messages[0]?.type).toBe('connected');
  });

  it('keeps two deployments with different prefixes apart', async () => {
    const one = await startRedisHub({ prefix: uniquePrefix() });
    const two = await startRedisHub({ prefix: uniquePrefix() });
    const client = await connect(two.url);
    await client.request('subscribe', { topic: 'logs' });
    await one.hub.publish(log(1, 'deployment one'));
    await two.hub.publish(log(1, 'deployment two'));
    await client.waitForData(1);
    await client.request('ping', {});
    expect(client.data().map((m) => m.payload.message)).toEqual(['deployment two']);
  });

  it('publishes from a publisher-only process into the hubs, validating first', async () => {
    const prefix = uniquePrefix();
    const hub = await startRedisHub({ prefix });
    const client = await connect(hub.url);
    await client.request('subscribe', { topic: 'logs' });
    const publisher = createRedisPublisher({ url: REDIS_URL, prefix });
    disposer.add(() => publisher.close());
    // @ts-expect-error level is not a log level
    expect(() => publisher.publish({ type: 'log_entry', payload: { level: 'loud' } })).toThrow(ProtocolError);
    await publisher.publish([log(1, 'from the runner'), log(2, 'second')]);
    expect((await client.waitForData(2)).map((m) => m.payload.message)).toEqual([
      'from the runner',
      'second',
    ]);
  });

  it('reports a gap for a position older than the capped history', async () => {
    const prefix = uniquePrefix();
    const { hub, url } = await startRedisHub({ prefix, maxMessages: 10 });
    const first = await connect(url);
    const ack = await first.request('subscribe', { topic: 'logs' });
    await first.close();
    for (let i = 0; i < 10; i++)
      await hub.publish(Array.from({ length: 50 }, (_, j) => log(1, `m${i}-${j}`)));
    const again = await connect(url);
    const resumed = await again.request('resume', {
      epoch: ack.payload.epoch,
      offset: ack.payload.offset,
      sequence: 0,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({
      recovered: false,
      reason: GapReason.HistoryTruncated,
      next_sequence: 2,
    });
  });
});

describe('Redis outages', () => {
  it('keeps clients connected, fails publishing loudly, and resumes delivery after Redis returns', async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.stop());
    const { hub, url, broker } = await startRedisHub({ url: redis.url, prefix: 'outage' });
    const client = await connect(url);
    const ack = await client.request('subscribe', { topic: 'logs' });
    await hub.publish(log(1, 'before'));
    await client.waitForData(1);

    await redis.kill();
    await expect
      .poll(async () =>
        hub.publish(log(1, 'lost?')).then(
          () => 'ok',
          (e: Error) => e.name,
        ),
      )
      .toBe(BrokerUnavailableError.name);
    await expect.poll(() => hub.metrics()).toMatch(/atp_ws_broker_up 0/);
    expect(broker.available).toBe(false);
    expect((await client.request('ping', {})).type).toBe('pong');

    await redis.start(); // empty again: its stream and epoch are gone
    await expect
      .poll(
        () =>
          hub.publish(log(1, 'after')).then(
            () => true,
            () => false,
          ),
        { timeout: 8000 },
      )
      .toBe(true);
    const after = await client.waitFor((m) => m.payload.message === 'after', {
      what: 'delivery after the outage',
    });
    expect(after.epoch).not.toBe(ack.payload.epoch);
    // The lost stream leaves one skipped sequence number before the new epoch: a gap the client reports.
    const sequences = client.data().map((m) => m.sequence as number);
    expect(sequences.at(-1)).toBe(sequences.length + 1);
    expect(sequences.slice(0, -1)).toEqual(sequences.slice(0, -1).map((_, i) => i + 1));
    await expect.poll(() => hub.metrics()).toMatch(/atp_ws_broker_up 1/);
  }, 20_000);
});
