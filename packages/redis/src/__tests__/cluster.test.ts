import { setTimeout as delay } from 'node:timers/promises';
import { GapReason } from '@atp/ws-protocol';
import { BrokerUnavailableError } from '@atp/ws-server';
import { deferred, RedisServer } from '@atp/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisPublisher, type RedisBrokerOptions, type RedisPublisher } from '../index.js';
import { assertBuilt, HubProcess, type HubProcessOptions, LoadBalancer } from './fixtures/hub-processes.js';
import { ResumingClient, type Subscription } from './fixtures/resuming-client.js';
import { connect, disposer, log, REDIS_URL, requireRedis, uniquePrefix } from './helpers.js';

// Hub processes run the built packages (turbo builds them before `test`).
beforeAll(async () => {
  assertBuilt();
  await requireRedis();
});

/** Per test: process start-up and Redis reconnect backoff take a while on a busy 2-core machine. */
const TEST_TIMEOUT_MS = 30_000;

const ALL_LOGS: Subscription[] = [{ topic: 'logs' }];
const SUITE_1_LOGS: Subscription[] = [{ topic: 'logs', filter: { suite_execution_id: 1 } }];

/** Starts hub processes in parallel; every one that started is killed after the test, even on failure. */
async function startHubs(count: number, options: HubProcessOptions): Promise<HubProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => HubProcess.start(options)));
  const hubs: HubProcess[] = [];
  for (const result of started) {
    if (result.status === 'fulfilled') {
      hubs.push(result.value);
      disposer.add(() => result.value.kill());
    }
  }
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return hubs;
}

async function startClient(
  url: string,
  clientId: string,
  subscriptions: readonly Subscription[],
): Promise<ResumingClient> {
  const client = new ResumingClient(url, clientId, subscriptions);
  disposer.add(() => client.close());
  await client.start();
  return client;
}

function startPublisher(options: RedisBrokerOptions): RedisPublisher {
  const publisher = createRedisPublisher(options);
  disposer.add(() => publisher.close());
  return publisher;
}

/** Log entries `<label>-<i>` for i in [from, to), suite 1 for even i and 2 for odd i. */
function logs(label: string, from: number, to: number) {
  return Array.from({ length: to - from }, (_, k) => log(((from + k) % 2) + 1, `${label}-${from + k}`));
}

async function publishAll(
  publisher: RedisPublisher,
  label: string,
  count: number,
  batch = 10,
): Promise<void> {
  for (let i = 0; i < count; i += batch) await publisher.publish(logs(label, i, Math.min(count, i + batch)));
}

function range(count: number, keep: (i: number) => boolean = () => true): number[] {
  return Array.from({ length: count }, (_, i) => i).filter(keep);
}

/** `payload.message` texts grouped by label (`<label>-<i>` → i), in arrival order. */
function byLabel(texts: readonly string[]): Record<string, number[]> {
  const groups: Record<string, number[]> = {};
  for (const text of texts) {
    const dash = text.lastIndexOf('-');
    const label = dash > 0 ? text.slice(0, dash) : text;
    const group = groups[label] ?? [];
    group.push(dash > 0 ? Number(text.slice(dash + 1)) : 0);
    groups[label] = group;
  }
  return groups;
}

/** Every message exactly once, in publish order per publisher, with sequences 1, 2, 3… and nothing else. */
function expectExactly(client: ResumingClient, expected: Record<string, number[]>): void {
  expect(client.problems).toEqual([]);
  expect(byLabel(client.texts())).toEqual(expected);
  expect(client.data.map((m) => m.sequence)).toEqual(range(client.data.length).map((i) => i + 1));
}

describe('hub processes sharing one Redis', () => {
  it.each([2, 3])(
    'delivers what each of %i processes and a publisher publish to every matching client of every process, once, in order per publisher',
    async (processes) => {
      const prefix = uniquePrefix();
      const hubs = await startHubs(processes, { url: REDIS_URL, prefix });
      const clients = await Promise.all(
        hubs.map((hub, i) => startClient(hub.url, `client-${i}`, i % 2 === 0 ? ALL_LOGS : SUITE_1_LOGS)),
      );
      const publisher = startPublisher({ url: REDIS_URL, prefix });
      const count = 300;
      // All publishers at once, so that their messages interleave in the stream.
      await Promise.all([
        ...hubs.map((hub, i) => hub.publish({ label: `hub${i}`, count, suite: [1, 2], window: 8 })),
        publishAll(publisher, 'publisher', count),
      ]);
      await publisher.publish(log(1, 'end'));
      await Promise.all(clients.map((client) => client.untilMessage('end')));

      clients.forEach((client, i) => {
        const wanted = range(count, (n) => i % 2 === 0 || n % 2 === 0);
        const expected: Record<string, number[]> = { publisher: wanted, end: [0] };
        hubs.forEach((_, h) => {
          expected[`hub${h}`] = wanted;
        });
        expectExactly(client, expected);
      });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'moves a client to another process after kill -9 of its own, twice, while messages keep coming: every message once, in order',
    async () => {
      const prefix = uniquePrefix();
      const [a, b, c] = (await startHubs(3, { url: REDIS_URL, prefix })) as [
        HubProcess,
        HubProcess,
        HubProcess,
      ];
      const balancer = await LoadBalancer.start(a.port);
      disposer.add(() => balancer.close());
      const all = await startClient(balancer.url, 'mover-all', ALL_LOGS);
      const suite1 = await startClient(balancer.url, 'mover-suite-1', SUITE_1_LOGS);
      const movers = [all, suite1];
      const publisher = startPublisher({ url: REDIS_URL, prefix });
      const total = 2000;
      // The last quarter waits for the second kill, so both kills land mid-stream however slow the machine.
      const secondKillDone = deferred();
      const publishing = (async () => {
        for (let i = 0; i < total; i += 10) {
          if (i === 1500) await secondKillDone.promise;
          await publisher.publish(logs('m', i, i + 10));
          // A bounded rate: at most about 2,000 messages/s.
          await delay(5);
        }
      })();
      const moved = (client: ResumingClient, resumes: number, received: number) =>
        client.until(
          () => client.resumes.length >= resumes && client.data.length >= received,
          `resume number ${resumes} and ${received} messages`,
        );

      await Promise.all([moved(all, 0, 400), moved(suite1, 0, 200)]);
      balancer.pointTo(b.port);
      await a.kill();
      await Promise.all([moved(all, 1, 900), moved(suite1, 1, 450)]);
      balancer.pointTo(c.port);
      await b.kill();
      secondKillDone.resolve();
      await publishing;
      await Promise.all([all.untilMessage(`m-${total - 1}`), suite1.untilMessage(`m-${total - 2}`)]);
      // A round trip to the last process, so that anything it still had queued for us arrives before the checks.
      for (const client of movers) await client.ping();

      expectExactly(all, { m: range(total) });
      expectExactly(suite1, { m: range(total, (i) => i % 2 === 0) });
      for (const client of movers) {
        expect(client.resumes).toEqual([
          expect.objectContaining({ recovered: true, complete: true }),
          expect.objectContaining({ recovered: true, complete: true }),
        ]);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'keeps clients connected through a Redis restart, fails publishing loudly meanwhile, then delivers again and tells a returning client of the new epoch',
    async () => {
      const redis = await RedisServer.start();
      disposer.add(() => redis.stop());
      const options = { url: redis.url, prefix: 'outage' };
      const [a, b] = (await startHubs(2, options)) as [HubProcess, HubProcess];
      const stays = [
        await startClient(a.url, 'stays-a', ALL_LOGS),
        await startClient(b.url, 'stays-b', ALL_LOGS),
      ];
      const leaver = await startClient(b.url, 'leaver', ALL_LOGS);
      const publisher = startPublisher(options);
      await a.publish({ label: 'before', count: 50, window: 8 });
      await Promise.all([...stays, leaver].map((client) => client.untilMessage('before-49')));
      const left = { ...leaver.position, sequence: leaver.sequence };
      await leaver.close();

      await redis.kill();
      // Each attempt publishes one message of its own label; what happened to it is checked at the end.
      const attempts: Record<string, string> = {};
      let tries = 0;
      const attempt = async (publish: (label: string) => Promise<unknown>) => {
        const label = `attempt${++tries}`;
        attempts[label] = await publish(label).then(
          () => 'published',
          (error: Error) => error.name,
        );
        return attempts[label];
      };
      const publishers = [
        (label: string) => a.publish({ label, count: 1 }),
        (label: string) => b.publish({ label, count: 1 }),
        (label: string) => publisher.publish(log(1, `${label}-0`)),
      ];
      for (const publish of publishers) {
        await expect.poll(() => attempt(publish), { timeout: 5000 }).toBe(BrokerUnavailableError.name);
      }
      await expect.poll(() => a.metrics(), { timeout: 5000 }).toMatch(/atp_ws_broker_up 0/);
      // Served throughout: a pong from each process.
      for (const client of stays) await client.ping();

      await redis.start(); // empty: the stream, its offsets and its epoch are gone
      for (const publish of publishers) {
        // The Redis connections come back with a backoff of up to 5 s.
        await expect.poll(() => attempt(publish), { timeout: 15_000 }).toBe('published');
      }
      await b.publish({ label: 'after-b', count: 50, window: 8 });
      await publishAll(publisher, 'after-publisher', 50);
      await publisher.publish(log(1, 'end'));
      await Promise.all(stays.map((client) => client.untilMessage('end', 15_000)));

      // Whatever was reported published arrived, once; what failed loudly never shows up.
      const expected: Record<string, number[]> = { before: range(50) };
      for (const [label, outcome] of Object.entries(attempts))
        if (outcome === 'published') expected[label] = [0];
      Object.assign(expected, { 'after-b': range(50), 'after-publisher': range(50), end: [0] });
      for (const client of stays) {
        // The stream Redis lost may have held messages this process had not read yet: one skipped
        // sequence number right before the first message of the new epoch marks that possible loss.
        const firstNew = client.data.findIndex((m) => m.epoch !== client.data[0]?.epoch);
        expect(firstNew).toBeGreaterThan(0);
        expect(client.problems).toEqual([`sequence ${firstNew + 2}, expected ${firstNew + 1}`]);
        expect(byLabel(client.texts())).toEqual(expected);
        expect(client.data.map((m) => m.sequence)).toEqual(
          client.data.map((_, i) => (i < firstNew ? i + 1 : i + 2)),
        );
        expect(client.closes).toEqual([]);
        expect(new Set(client.data.slice(50).map((m) => m.epoch))).not.toContain(left.epoch);
      }

      const returning = await connect(a.url, 'client_id=leaver');
      const resumed = await returning.request('resume', { ...left, subscriptions: ALL_LOGS });
      expect(resumed.payload).toMatchObject({
        recovered: false,
        complete: false,
        reason: GapReason.EpochChanged,
        next_sequence: left.sequence + 2,
      });
      // What the new epoch holds follows the gap, numbered on from it.
      const newEpoch = stays[0]?.data.slice(50) ?? [];
      expect(resumed.payload.replayed).toBe(newEpoch.length);
      const replayed = (await returning.waitForData(newEpoch.length)).slice(0, newEpoch.length);
      expect(replayed.map((m) => [m.payload.message, m.sequence])).toEqual(
        newEpoch.map((m, i) => [m.payload.message, left.sequence + 2 + i]),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'keeps two deployments with different prefixes apart across processes',
    async () => {
      const one = uniquePrefix();
      const two = uniquePrefix();
      const [[oneA, oneB], [twoHub]] = (await Promise.all([
        startHubs(2, { url: REDIS_URL, prefix: one, presenceIntervalMs: 100 }),
        startHubs(1, { url: REDIS_URL, prefix: two, presenceIntervalMs: 100 }),
      ])) as [[HubProcess, HubProcess], [HubProcess]];
      const clientsOne = [
        await startClient(oneA.url, 'one-a', ALL_LOGS),
        await startClient(oneB.url, 'one-b', ALL_LOGS),
      ];
      const clientTwo = await startClient(twoHub.url, 'two', ALL_LOGS);
      const publisherOne = startPublisher({ url: REDIS_URL, prefix: one });
      const publisherTwo = startPublisher({ url: REDIS_URL, prefix: two });
      await Promise.all([
        oneA.publish({ label: 'one-hub', count: 100, window: 8 }),
        publishAll(publisherOne, 'one-publisher', 100),
        twoHub.publish({ label: 'two-hub', count: 100, window: 8 }),
        publishAll(publisherTwo, 'two-publisher', 100),
      ]);
      await publisherOne.publish(log(1, 'end1'));
      await publisherTwo.publish(log(1, 'end2'));
      await Promise.all([
        ...clientsOne.map((client) => client.untilMessage('end1')),
        clientTwo.untilMessage('end2'),
      ]);

      for (const client of clientsOne) {
        expectExactly(client, { 'one-hub': range(100), 'one-publisher': range(100), end1: [0] });
      }
      expectExactly(clientTwo, { 'two-hub': range(100), 'two-publisher': range(100), end2: [0] });
      const ids = async (hub: HubProcess) => (await hub.clients()).map((client) => client.client_id).sort();
      await expect.poll(() => ids(oneB), { timeout: 3000 }).toEqual(['one-a', 'one-b']);
      await expect.poll(() => ids(twoHub), { timeout: 3000 }).toEqual(['two']);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'lists the clients of every process from any process, and drops those of a killed process within the presence TTL',
    async () => {
      const prefix = uniquePrefix();
      const presenceTtlMs = 500;
      const [a, b, c] = (await startHubs(3, {
        url: REDIS_URL,
        prefix,
        presenceTtlMs,
        presenceIntervalMs: 100,
      })) as [HubProcess, HubProcess, HubProcess];
      await connect(a.url, 'client_id=on-a');
      await connect(b.url, 'client_id=on-b-1');
      await connect(b.url, 'client_id=on-b-2');
      await connect(c.url, 'client_id=on-c');
      const listing = async (hub: HubProcess) =>
        (await hub.clients()).map((client) => `${client.client_id}@${client.server_id}`).sort();
      const survivors = [`on-a@${a.serverId}`, `on-c@${c.serverId}`];
      const everyone = [...survivors, `on-b-1@${b.serverId}`, `on-b-2@${b.serverId}`].sort();
      await expect.poll(() => listing(a), { timeout: 3000 }).toEqual(everyone);
      await expect.poll(() => listing(c), { timeout: 3000 }).toEqual(everyone);

      await b.kill();
      const killedAt = performance.now();
      await expect.poll(() => listing(a), { timeout: presenceTtlMs + 750, interval: 25 }).toEqual(survivors);
      console.log(
        `presence: a killed process's clients left the listing after ${Math.round(performance.now() - killedAt)} ms (TTL ${presenceTtlMs} ms)`,
      );
      expect(await listing(c)).toEqual(survivors);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'measures cross-process delivery: a client on process B receiving what process A publishes',
    async () => {
      const prefix = uniquePrefix();
      const [a, b] = (await startHubs(2, { url: REDIS_URL, prefix })) as [HubProcess, HubProcess];
      const reader = await startClient(b.url, 'reader', ALL_LOGS);
      const count = 20_000;
      const runs = [
        {
          label: 'single',
          how: 'one message per hub.publish call, 64 calls in flight',
          batch: 1,
          window: 64,
        },
        { label: 'batched', how: 'hub.publish of 100 messages, 4 calls in flight', batch: 100, window: 4 },
      ];
      for (const { label, how, batch, window } of runs) {
        const started = performance.now();
        await a.publish({ label, count, batch, window });
        await reader.untilMessage(`${label}-${count - 1}`, 12_000);
        const seconds = (performance.now() - started) / 1000;
        const resumes = reader.resumes.length > 0 ? ` (${reader.resumes.length} resumes so far)` : '';
        console.log(
          `cross-process delivery, 2 processes (${how}): ${count} messages in ${seconds.toFixed(2)} s = ${Math.round(count / seconds)} messages/s received on B${resumes}`,
        );
      }
      // A reader that fell behind may have been closed as a slow consumer and resumed: still nothing lost.
      expectExactly(reader, { single: range(count), batched: range(count) });
    },
    TEST_TIMEOUT_MS,
  );
});
