import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, RawTestClient, RedisServer } from '@atp/test-utils';
import { BrokerUnavailableError, createATPWebSocketServer } from '@atp/ws-server';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisPublisher, RedisBroker } from '../index.js';
import { connect, disposer, log, startRedisHub, uniquePrefix } from './helpers.js';
import { hashTagged } from '../streams.js';
import { HubProcess } from './fixtures/hub-processes.js';
import { ResumingClient } from './fixtures/resuming-client.js';

async function ownRedis(port?: number): Promise<RedisServer> {
  const server = await RedisServer.start(port === undefined ? {} : { port });
  disposer.add(() => server.kill());
  return server;
}

/** Resolves once `attempt` stops throwing (polling every 50 ms), or rejects after `ms`. */
async function eventually<T>(attempt: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function upgradeStatus(url: string): Promise<number> {
  try {
    const client = await RawTestClient.connect(url, { timeoutMs: 2000 });
    await client.close();
    return 101;
  } catch (error) {
    return (error as { statusCode?: number }).statusCode ?? 0;
  }
}

/** DUMPs every key of `prefix`; resolves with a function that RESTOREs them as they were (a rollback). */
async function snapshotKeys(url: string, prefix: string): Promise<() => Promise<void>> {
  const admin = new Redis(url);
  disposer.add(() => admin.quit());
  const keys = await admin.keys(`${hashTagged(prefix)}:*`);
  const dumps = await Promise.all(keys.map(async (key) => [key, await admin.dumpBuffer(key)] as const));
  return async () => {
    for (const [key, dump] of dumps) if (dump) await admin.restore(key, 0, dump, 'REPLACE');
  };
}

/** Makes Redis write its snapshot file now (SAVE). */
async function saveSnapshot(url: string): Promise<void> {
  const admin = new Redis(url);
  await admin.save();
  admin.disconnect();
}

/** Connects as `clientId` and resumes every log from `last`; resolves with the client and its `resumed`. */
async function resumeLogs(
  url: string,
  clientId: string,
  last: { epoch: string; offset: number; sequence: number },
) {
  const again = await connect(url, `client_id=${clientId}`);
  const { epoch, offset, sequence } = last;
  again.send({
    type: 'resume',
    id: 'r',
    payload: { epoch, offset, sequence, subscriptions: [{ topic: 'logs' }] },
  });
  return { again, resumed: await again.waitFor((m) => m.type === 'resumed') };
}

describe('Redis unreachable when the hub starts', () => {
  it('refuses clients and publishes loudly until Redis answers, then recovers on its own', async () => {
    const port = await freePort();
    const redisUrl = `redis://127.0.0.1:${port}`;
    const broker = new RedisBroker({ url: redisUrl, prefix: 'atp-test:start' });
    const hub = createATPWebSocketServer({ port: 0, broker });
    const publisher = createRedisPublisher({ url: redisUrl, prefix: 'atp-test:start' });
    disposer.add(async () => {
      await hub.close();
      await broker.close();
      await publisher.close();
    });
    // Not `await hub.ready`: it waits for the broker. The hub listens meanwhile.
    const port0 = await eventually(
      async () => hub.address()?.port ?? Promise.reject(new Error('not listening')),
    );
    const url = `ws://127.0.0.1:${port0}/api/ws/updates`;

    expect(await upgradeStatus(url)).toBe(503);
    await expect(hub.publish(log(1, 'down'))).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(publisher.publish(log(1, 'down'))).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(await hub.metrics()).toMatch(/^atp_ws_broker_up 0$/m);

    await ownRedis(port);
    await hub.ready;
    expect(await upgradeStatus(url)).toBe(101);
    const client = await connect(url);
    const greeting = client.messages[0]?.payload as { epoch: string };
    expect(greeting.epoch).toMatch(/^.+$/);
    await client.request('subscribe', { topic: 'logs' });
    await eventually(() => hub.publish(log(1, 'from the hub')));
    await eventually(() => publisher.publish(log(1, 'from the publisher')));
    const data = await client.waitForData(2);
    expect(data.map((m) => [m.payload.message, m.sequence])).toEqual([
      ['from the hub', 1],
      ['from the publisher', 2],
    ]);
    expect(await hub.metrics()).toMatch(/^atp_ws_broker_up 1$/m);
  });
});

describe('Redis rolled back behind what the hub delivered', () => {
  it('tells live clients of a gap and delivers what is published after it', async () => {
    const redis = await ownRedis();
    const prefix = 'atp-test:rollback';
    const { hub, url } = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs' });
    await hub.publish([log(1, 'a'), log(1, 'b')]);
    await client.waitForData(2);

    // What a failover to a replica that lagged leaves: the keys as they were earlier, epoch included.
    const restore = await snapshotKeys(redis.url, prefix);
    await hub.publish([log(1, 'c'), log(1, 'd'), log(1, 'e')]);
    await client.waitForData(5);
    await restore();

    const after = ['f', 'g', 'h', 'i', 'j'];
    await hub.publish(after.map((m) => log(1, m)));
    // The hub's reader checks the stream at least every blockMs.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await hub.publish(log(1, 'k'));
    await client.waitFor((m) => m.payload.message === 'k', { what: 'the message after the gap' });
    const data = client.data();
    const sequences = data.map((m) => m.sequence as number);
    // Never silence: either a hole in the numbering before what follows the rollback, or every message.
    const received = data.map((m) => m.payload.message);
    const hole = sequences.some((s, i) => i > 0 && s !== (sequences[i - 1] as number) + 1);
    const everything = after.every((m) => received.includes(m));
    expect(hole || everything).toBe(true);
    expect(new Set(received).size).toBe(received.length);
    expect(received.slice(0, 5)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('one live session per client_id', () => {
  it('keeps exactly one of two connections made at the same moment on two processes', async () => {
    const prefix = uniquePrefix();
    const one = await startRedisHub({ prefix });
    const two = await startRedisHub({ prefix });
    for (let round = 0; round < 10; round++) {
      const clients = await Promise.all([
        connect(one.url, `client_id=twin-${round}`),
        connect(two.url, `client_id=twin-${round}`),
      ]);
      const codes = clients.map((client) => client.closed.then(({ code }) => code));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const settled = await Promise.all(
        codes.map((code) =>
          Promise.race([code, new Promise((resolve) => setTimeout(() => resolve('open'), 10))]),
        ),
      );
      expect(
        settled.filter((s) => s === 'open'),
        `round ${round}: ${settled}`,
      ).toHaveLength(1);
      expect(settled.filter((s) => s === 4000)).toHaveLength(1);
    }
  }, 30_000);

  it('closes the older connection on another process with 4000 when the same client_id connects', async () => {
    const prefix = uniquePrefix();
    const one = await startRedisHub({ prefix });
    const two = await startRedisHub({ prefix });
    const first = await connect(one.url, 'client_id=roaming');
    const closed = first.waitForClose();
    const second = await connect(two.url, 'client_id=roaming');
    expect((await closed).code).toBe(4000);
    await second.request('subscribe', { topic: 'logs' });
    await one.hub.publish(log(1, 'still served'));
    expect((await second.waitForData(1))[0]?.payload.message).toBe('still served');
    await eventually(async () =>
      expect((await one.hub.clients()).map((c) => [c.client_id, c.server_id])).toEqual([
        ['roaming', two.hub.serverId],
      ]),
    );
  }, 20_000);
});

describe('Redis back at an epoch it had left', () => {
  it('never delivers again what a client received under that epoch, live or in a replay', async () => {
    const redis = await ownRedis();
    const prefix = 'atp-test:aba';
    const { hub, url } = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await hub.publish([log(1, 'a'), log(1, 'b')]);
    await client.waitForData(2);
    const restore = await snapshotKeys(redis.url, prefix);

    // Redis restarts empty (a new epoch), then goes back to the state it had before.
    await redis.kill();
    await redis.start();
    await eventually(() => hub.publish(log(1, 'c')));
    await client.waitFor((m) => m.payload.message === 'c', { what: 'c' });
    await restore();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await eventually(() => hub.publish(log(1, 'd')));
    await client.waitFor((m) => m.payload.message === 'd', { what: 'd' });
    // A replay of everything kept, on the same connection, brings nothing it already had.
    const ack = await client.request('subscribe', { topic: 'logs', from: 'start' });
    await hub.publish(log(2, 'e'));
    await client.waitFor((m) => m.payload.message === 'e', { what: 'e' });
    const received = client.data().map((m) => m.payload.message);
    expect(new Set(received).size).toBe(received.length);
    expect(received).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(ack.payload.history).toMatchObject({ complete: true });
  });
});

describe('Redis restarted from an older snapshot', () => {
  it('starts a new epoch with a gap for live clients, delivers what comes after, and refuses the old position', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atp-test-snapshot-'));
    disposer.add(() => rmSync(dir, { recursive: true, force: true }));
    const redis = await RedisServer.start({ args: ['--dir', dir, '--dbfilename', 'snapshot.rdb'] });
    disposer.add(() => redis.kill());
    const prefix = 'atp-test:snapshot';
    const { hub, url } = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const client = await connect(url, 'client_id=snap');
    await client.request('subscribe', { topic: 'logs' });
    await hub.publish([log(1, 'a'), log(1, 'b')]);
    await client.waitForData(2);
    await saveSnapshot(redis.url);
    await hub.publish([log(1, 'c'), log(1, 'd')]);
    const seen = await client.waitForData(4);
    // Redis comes back from the snapshot: c and d are gone from it, offsets 3 and 4 will be reused.
    await redis.kill();
    await redis.start();
    await eventually(() => hub.publish(log(1, 'e')));
    const e = await client.waitFor((m) => m.payload.message === 'e', { what: 'e' });
    expect(e.sequence).toBe(6);
    expect(e.epoch).not.toBe(seen[3]?.epoch);
    // A client that saw d resumes: it is told of the gap rather than handed offsets reused for others.
    const last = seen[3] as unknown as { epoch: string; offset: number; sequence: number };
    await client.close();
    const { resumed } = await resumeLogs(url, 'snap', last);
    expect(resumed.payload).toMatchObject({ recovered: false, reason: 'epoch_changed' });
  }, 30_000);
});

describe('Redis restarted from an older snapshot while no hub ran', () => {
  it('is noticed by the next hub to start: a resume from before gets a gap, never offsets reused for others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atp-test-snapshot-'));
    disposer.add(() => rmSync(dir, { recursive: true, force: true }));
    const redis = await RedisServer.start({ args: ['--dir', dir, '--dbfilename', 'snapshot.rdb'] });
    disposer.add(() => redis.kill());
    const prefix = 'atp-test:snapshot-cold';
    const first = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const client = await connect(first.url, 'client_id=cold');
    await client.request('subscribe', { topic: 'logs' });
    await first.hub.publish([log(1, 'a'), log(1, 'b')]);
    await client.waitForData(2);
    await saveSnapshot(redis.url);
    await first.hub.publish([log(1, 'c'), log(1, 'd')]);
    const last = (await client.waitForData(4))[3] as unknown as {
      epoch: string;
      offset: number;
      sequence: number;
    };
    await client.close();
    await first.hub.close();
    await first.broker.close();
    await redis.kill();
    await redis.start();
    const publisher = createRedisPublisher({ url: redis.url, prefix });
    disposer.add(() => publisher.close());
    await eventually(() => publisher.publish(log(1, 'f reuses offset 3')));
    const second = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const { again, resumed } = await resumeLogs(second.url, 'cold', last);
    expect(resumed.payload).toMatchObject({ recovered: false, reason: 'epoch_changed' });
    await second.hub.publish(log(1, 'g'));
    await again.waitFor((m) => m.payload.message === 'g', { what: 'g' });
    expect(again.data().map((m) => m.payload.message)).toEqual(['g']);
  }, 30_000);
});

describe('a hub that read a lost timeline joins an epoch another hub started above where the two agree', () => {
  it("delivers what Redis kept after the point they agree on, which its clients never got, behind the epoch's gap", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atp-test-snapshot-'));
    disposer.add(() => rmSync(dir, { recursive: true, force: true }));
    const redis = await RedisServer.start({ args: ['--dir', dir, '--dbfilename', 'snapshot.rdb'] });
    disposer.add(() => redis.kill());
    const prefix = 'atp-test:lagging-timeline';
    const lagging = await HubProcess.start({ url: redis.url, prefix, blockMs: 100 });
    disposer.add(() => lagging.kill());
    const client = new ResumingClient(lagging.url, 'lagging', [{ topic: 'logs' }]);
    disposer.add(() => client.close());
    await client.start();
    const publisher = createRedisPublisher({ url: redis.url, prefix });
    disposer.add(() => publisher.close());
    for (const text of ['a', 'b']) await publisher.publish(log(1, text));
    await client.untilMessage('b');
    await saveSnapshot(redis.url);
    // Read by the lagging hub, then lost: Redis goes back to the snapshot (offsets 3 and 4 are reused).
    for (const text of ['lost-c', 'lost-d']) await publisher.publish(log(1, text));
    await client.untilMessage('lost-d');
    const pid = lagging.pid ?? 0;
    process.kill(pid, 'SIGSTOP');
    disposer.add(() => void (lagging.alive && process.kill(pid, 'SIGCONT')));
    await redis.kill();
    await redis.start();
    // Published on the restarted Redis while the lagging hub reads nothing: kept by Redis at offsets 3, 4.
    for (const text of ['kept-c', 'kept-d']) await eventually(() => publisher.publish(log(1, text)));
    // A hub starting now takes a new epoch over at the head (4): it never read the lost timeline.
    const fresh = await startRedisHub({ url: redis.url, prefix, blockMs: 100 });
    const greeted = await connect(fresh.url);
    const greeting = greeted.messages[0]?.payload as { epoch: string };
    const { epoch } = greeting;
    expect(epoch).not.toBe(client.data[0]?.epoch);
    process.kill(pid, 'SIGCONT');
    await fresh.hub.publish(log(1, 'e'));
    await client.untilMessage('e');
    await client.ping();

    // The lagging hub's client had a, b, lost-c, lost-d; Redis kept kept-c and kept-d, which it never got.
    expect(client.texts()).toEqual(['a', 'b', 'lost-c', 'lost-d', 'kept-c', 'kept-d', 'e']);
    // Behind an explicit gap: a skipped sequence number and the new epoch.
    expect(client.data.map((m) => m.sequence)).toEqual([1, 2, 3, 4, 6, 7, 8]);
    expect(client.data[4]?.epoch).toBe(epoch);
    expect(client.data[3]?.epoch).not.toBe(epoch);
  }, 30_000);
});

describe('a resume answered while this process has not read the new epoch yet', () => {
  it('reports the position the client is at in the new epoch, never offset 0 (a position before it begins)', async () => {
    const redis = await ownRedis();
    const prefix = 'atp-test:resume-during-switch';
    // This process's reader is in a long blocking read: it learns of the new epoch late.
    const { hub, url } = await startRedisHub({ url: redis.url, prefix, blockMs: 30_000 });
    const client = await connect(url, 'client_id=switch');
    await client.request('subscribe', { topic: 'logs' });
    await hub.publish([log(1, 'a'), log(1, 'b')]);
    await client.waitForData(2);
    const restore = await snapshotKeys(redis.url, prefix);
    await hub.publish([log(1, 'c'), log(1, 'd')]);
    const last = (await client.waitForData(4))[3] as unknown as {
      epoch: string;
      offset: number;
      sequence: number;
    };
    await client.close();
    // Another process, reading on, sees Redis go back to offset 2 and starts a new epoch there.
    const other = new RedisBroker({ url: redis.url, prefix, blockMs: 100 });
    disposer.add(() => other.close());
    const epochs: string[] = [];
    await other.subscribe((batch) => epochs.push(batch.epoch));
    await eventually(async () => expect(epochs.length).toBeGreaterThan(0));
    await restore();
    await eventually(async () => expect(new Set(epochs).size).toBe(2));
    const next = epochs.at(-1) as string;
    // This process still greets with the old epoch: it has not read the new one.
    const probe = await connect(url);
    const probed = probe.messages[0]?.payload as { epoch: string };
    expect(probed.epoch).toBe(last.epoch);

    const { again, resumed } = await resumeLogs(url, 'switch', last);
    expect(resumed.payload).toMatchObject({
      recovered: false,
      reason: 'epoch_changed',
      epoch: next,
      offset: 2,
    });
    // The position answered is one the stream can place: resuming from it again loses nothing.
    const answered = resumed.payload as { epoch: string; offset: number; next_sequence: number };
    await again.close();
    const third = await resumeLogs(url, 'switch', {
      epoch: answered.epoch,
      offset: answered.offset,
      sequence: answered.next_sequence - 1,
    });
    expect(third.resumed.payload).toMatchObject({ recovered: true, epoch: next });
  }, 30_000);
});
