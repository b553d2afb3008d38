import { GapReason } from '@atp/ws-protocol';
import { createRedisPublisher } from '@atp/ws-redis';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  disposer,
  figure,
  log,
  REDIS_URL,
  requireRedis,
  socketBudget,
  uniquePrefix,
  until,
} from './harness/common.js';
import { type ChildBrokerOptions, ServerProcess } from './harness/server-process.js';
import { connectAll, type StormClient, spreadOf, stormClients } from './harness/storm-clients.js';

// The issue asks for 5,000 clients; fewer when `ulimit -n` cannot hold them.
const CLIENTS = socketBudget(Number(process.env.STORM_CLIENTS ?? 5000));
const SUITES = 50;
/** Full jitter: each client waits a uniformly random 0..WINDOW ms before its first retry. */
const WINDOW = 4000;
/** Fewer than a listen backlog (511): without jitter none waits for a SYN retransmit, all come at once. */
const CONTROL_CLIENTS = 400;

const round = (n: number) =>
  Array.from({ length: SUITES }, (_, s) => log(s + 1, `round ${n} suite ${s + 1}`));

/** Starts the clients on a fresh server, gives each one message, then restarts the server on the same port. */
async function stormAfterRestart(
  brokerOptions: ChildBrokerOptions,
  whileDown: () => Promise<void> = async () => {},
  { count = CLIENTS, jitter = 'full' as number | 'full', window = WINDOW } = {},
): Promise<{ clients: StormClient[]; server: ServerProcess; restartedAt: number; downMs: number }> {
  let server = await ServerProcess.start({ brokerOptions, hubOptions: { maxConnectionsPerIp: 1000 } });
  disposer.add(() => server.kill());
  const clients = stormClients(count, server.url, SUITES, { reconnectInterval: window, jitter });
  await connectAll(clients);
  await until(
    async () => (await server.clients()).filter((c) => c.subscriptions.length === 1).length === count,
    'every subscription to reach the server',
  );
  await server.publish(round(1));
  await until(() => clients.every((c) => c.received.length === 1), 'round 1 to reach every client');

  const stoppedAt = performance.now();
  const port = server.port;
  await server.stop();
  await whileDown();
  server = await ServerProcess.start({ port, brokerOptions, hubOptions: { maxConnectionsPerIp: 1000 } });
  disposer.add(() => server.kill());
  const restartedAt = performance.now();
  await until(
    () => clients.every((c) => c.connects.length === 2),
    'every client to reconnect',
    window * 4 + 20_000,
  );
  return { clients, server, restartedAt, downMs: restartedAt - stoppedAt };
}

function reportSpread(scenario: string, clients: StormClient[], restartedAt: number, downMs: number) {
  const times = clients.map((c) => (c.connects[1]?.at ?? Number.NaN) - restartedAt);
  const spread = spreadOf(times);
  figure(scenario, {
    clients: CLIENTS,
    window_ms: WINDOW,
    down_ms: downMs,
    back_p10_ms: spread.p10,
    back_p50_ms: spread.p50,
    back_p90_ms: spread.p90,
    busiest_100ms_share: spread.busiest100ms,
    busiest_300ms_share: spread.busiest300ms,
  });
  // Spread over the window, not one burst: no 300 ms span holds more than a third of the clients (a
  // new process's listen backlog is accepted at once, so some bunching remains), and the middle 80%
  // take at least 40% of the window. Without jitter, most come back within 300 ms (the control below).
  expect(spread.busiest300ms).toBeLessThan(0.35);
  expect(spread.p90 - spread.p10).toBeGreaterThan(WINDOW * 0.4);
}

describe('reconnect storm', () => {
  it(`brings ${CLIENTS} clients back spread over the backoff window, each told of the lost in-memory history`, async () => {
    const { clients, server, restartedAt, downMs } = await stormAfterRestart({ kind: 'memory' });
    await until(() => clients.every((c) => c.gaps.length === 1), 'a sequence_gap on every client');
    await server.publish(round(2));
    await until(() => clients.every((c) => c.received.length === 2), 'round 2 to reach every client');

    reportSpread('reconnect-storm-memory', clients, restartedAt, downMs);
    for (const client of clients) {
      expect(client.connects.map((c) => c.resumed)).toEqual([false, true]);
      // Never silence: the lost history is a gap with a reason, and numbering goes on after it.
      expect(client.gaps).toEqual([
        expect.objectContaining({ expected: 2, received: 3, reason: GapReason.EpochChanged }),
      ]);
      expect(client.received).toEqual([
        [1, `round 1 suite ${client.suite}`],
        [3, `round 2 suite ${client.suite}`],
      ]);
    }
    expect(server.unhandled).toEqual([]);
  });

  it('comes back in one burst without jitter (the control that shows the spread above is the jitter)', async () => {
    // A first retry late enough for the new process to be up: without jitter they all fire at once.
    const window = 5000;
    const { clients, restartedAt } = await stormAfterRestart({ kind: 'memory' }, async () => {}, {
      count: CONTROL_CLIENTS,
      jitter: 0,
      window,
    });
    const spread = spreadOf(clients.map((c) => (c.connects[1]?.at ?? Number.NaN) - restartedAt));
    figure('reconnect-storm-no-jitter', {
      clients: CONTROL_CLIENTS,
      first_retry_ms: window,
      back_p10_ms: spread.p10,
      back_p90_ms: spread.p90,
      busiest_100ms_share: spread.busiest100ms,
      busiest_300ms_share: spread.busiest300ms,
    });
    expect(spread.busiest300ms).toBeGreaterThan(0.6);
  });
});

describe('reconnect storm with Redis', () => {
  beforeAll(() => requireRedis());

  it(`resumes ${CLIENTS} clients after a restart with every message published while the server was down, no gap`, async () => {
    const prefix = uniquePrefix('storm');
    const brokerOptions: ChildBrokerOptions = { kind: 'redis', url: REDIS_URL, prefix };
    const { clients, server, restartedAt, downMs } = await stormAfterRestart(brokerOptions, async () => {
      // Published while no hub runs: only Redis holds these.
      const publisher = createRedisPublisher({ url: REDIS_URL, prefix });
      await publisher.publish(round(2));
      await publisher.close();
    });
    await until(() => clients.every((c) => c.received.length === 2), 'the missed round to be replayed');
    await server.publish(round(3));
    await until(() => clients.every((c) => c.received.length === 3), 'round 3 to reach every client');

    reportSpread('reconnect-storm-redis', clients, restartedAt, downMs);
    for (const client of clients) {
      expect(client.connects.map((c) => c.resumed)).toEqual([false, true]);
      expect(client.gaps).toEqual([]);
      expect(client.received).toEqual([
        [1, `round 1 suite ${client.suite}`],
        [2, `round 2 suite ${client.suite}`],
        [3, `round 3 suite ${client.suite}`],
      ]);
    }
    expect(server.unhandled).toEqual([]);
  });
});
