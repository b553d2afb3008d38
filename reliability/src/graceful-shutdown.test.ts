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
import { TcpProxy } from './harness/proxy.js';
import { type ChildBrokerOptions, ServerProcess } from './harness/server-process.js';
import { connectAll, stormClients } from './harness/storm-clients.js';

const CLIENTS = socketBudget(300, 3); // each client also holds two proxy sockets here
const SUITES = 20;
const BATCH = 5;
const TICK_MS = 10;
const BEFORE_MS = 1500;
const AFTER_MS = 1500;

describe('graceful shutdown while publishing', () => {
  beforeAll(() => requireRedis());

  it('loses no accepted message for clients that reconnect to a second process', async () => {
    const prefix = uniquePrefix('shutdown');
    const brokerOptions: ChildBrokerOptions = { kind: 'redis', url: REDIS_URL, prefix };
    const a = await ServerProcess.start({ brokerOptions });
    disposer.add(() => a.kill());
    const b = await ServerProcess.start({ brokerOptions });
    disposer.add(() => b.kill());
    const proxy = new TcpProxy(a.port);
    await proxy.listen();
    disposer.add(() => proxy.close());

    const clients = stormClients(CLIENTS, proxy.url, SUITES, { reconnectInterval: 300, jitter: 'full' });
    await connectAll(clients);
    await until(
      async () => (await a.clients()).filter((c) => c.subscriptions.length === 1).length === CLIENTS,
      'every subscription to reach process A',
    );

    // One publisher, one publish at a time, to A until A refuses (it is shutting down), then to B.
    const accepted: { suite: number; text: string }[] = [];
    let refused = 0;
    let target = a;
    let k = 0;
    let shutdown: Promise<void> | undefined;
    let shutdownAt = 0;
    const started = performance.now();
    while (performance.now() - started < BEFORE_MS + AFTER_MS) {
      if (!shutdown && performance.now() - started >= BEFORE_MS) {
        // The load balancer takes A out of rotation, and A shuts down gracefully (1001 to every client).
        proxy.target = b.port;
        shutdownAt = accepted.length;
        shutdown = a.stop();
      }
      const batch = Array.from({ length: BATCH }, () => {
        k += 1;
        return log((k % SUITES) + 1, `message ${k}`);
      });
      try {
        await target.publish(batch);
        accepted.push(
          ...batch
            .map(({ payload }) => payload as { suite_execution_id: number; message: string })
            .map((p) => ({ suite: p.suite_execution_id, text: p.message })),
        );
      } catch {
        refused += batch.length;
        target = b;
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
    await shutdown;

    const expectedFor = (suite: number) => accepted.filter((m) => m.suite === suite).map((m) => m.text);
    await until(
      () => clients.every((c) => c.received.length >= expectedFor(c.suite).length),
      'every accepted message to reach every client',
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    figure('graceful-shutdown', {
      clients: CLIENTS,
      accepted: accepted.length,
      accepted_by_a_before_shutdown: shutdownAt,
      refused_while_closing: refused,
      reconnected: clients.filter((c) => c.connects.length === 2).length,
      gaps: clients.reduce((sum, c) => sum + c.gaps.length, 0),
    });
    expect(accepted.length).toBeGreaterThan(shutdownAt);
    for (const client of clients) {
      expect(client.connects.map((c) => c.resumed)).toEqual([false, true]);
      expect(client.gaps).toEqual([]);
      const expected = expectedFor(client.suite);
      expect(client.received.map(([, text]) => text)).toEqual(expected);
      expect(client.received.map(([sequence]) => sequence)).toEqual(expected.map((_, i) => i + 1));
    }
    expect([...a.unhandled, ...b.unhandled]).toEqual([]);
  });
});
