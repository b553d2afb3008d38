import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { disposer, figure, LOCAL_ADDRESSES, MiB, socketBudget, until } from './harness/common.js';
import { ServerProcess } from './harness/server-process.js';
import { VerifyingClient } from './harness/verifying-client.js';
import { makeProfiles, random, recordExpected, workloadMessage } from './harness/workload.js';

// The issue asks for 2,000 clients x 500 messages/s x 60 s. Override with env for a longer run.
const CLIENTS = socketBudget(Number(process.env.SOAK_CLIENTS ?? 2000));
const RATE = Number(process.env.SOAK_RATE ?? 500);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const SUITES = 100;
const PROFILES = 200;
/** History kept by the broker: saturated before the baseline, so it weighs the same at both ends. */
const HISTORY = 5000;
const HEAP_MARGIN = 8 * MiB;
const PING_INTERVAL = 5000;
const PING_TIMEOUT = 2000;
const SETTLE_MS = 3 * (PING_INTERVAL + PING_TIMEOUT);

describe('soak', () => {
  it(`delivers to ${CLIENTS} clients exactly their matching messages at ${RATE}/s for ${SECONDS} s, without leaking`, async () => {
    const rand = random(20240115);
    const server = await ServerProcess.start({
      brokerOptions: { kind: 'memory', maxMessages: HISTORY },
      // Heartbeat under load too; a ping round also holds on to the connections it pinged until its
      // pingTimeout, so memory after a disconnect is read once that has passed.
      hubOptions: { maxConnectionsPerIp: 1000, pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT },
    });
    disposer.add(() => server.stop());

    // Fill the history to its cap first, so that it weighs the same in every measurement below.
    let offset = 0;
    for (let i = 0; i < HISTORY / 500 + 2; i++) {
      const batch = Array.from({ length: 500 }, () => workloadMessage(rand, ++offset, SUITES));
      await server.publish(batch);
    }
    const beforeClients = await server.stats();

    const profiles = makeProfiles(rand, PROFILES, SUITES);
    const clients: VerifyingClient[] = [];
    const connectStarted = performance.now();
    for (let i = 0; i < CLIENTS; i += 100) {
      const wave = Array.from({ length: Math.min(100, CLIENTS - i) }, (_, j) => {
        const n = i + j;
        const client = new VerifyingClient(
          server.url,
          profiles[n % PROFILES] as (typeof profiles)[number],
          LOCAL_ADDRESSES[n % LOCAL_ADDRESSES.length] as string,
          offset,
        );
        clients.push(client);
        disposer.add(() => client.ws.terminate());
        return client.start();
      });
      await Promise.all(wave);
    }
    const connectSeconds = (performance.now() - connectStarted) / 1000;
    const start = await server.stats({ resetDelay: true });

    // Publish at RATE, in 10 ms ticks, catching up on timer drift; expectations are recorded first.
    const localDelay = monitorEventLoopDelay({ resolution: 10 });
    localDelay.enable();
    const first = offset + 1;
    const total = RATE * SECONDS;
    const accepted: Promise<{ accepted: number }>[] = [];
    const publishStarted = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - publishStarted) / 1000) * RATE));
        const batch = [];
        while (offset - first + 1 < due) {
          const message = workloadMessage(rand, ++offset, SUITES);
          recordExpected(profiles, message, offset);
          batch.push(message);
        }
        if (batch.length > 0) accepted.push(server.publish(batch));
        if (offset - first + 1 >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const publishSeconds = (performance.now() - publishStarted) / 1000;
    const acceptedCount = (await Promise.all(accepted)).reduce((sum, r) => sum + r.accepted, 0);
    await until(() => clients.every((c) => c.complete), 'every client to receive its messages', 60_000);
    const drainSeconds = (performance.now() - publishStarted) / 1000 - publishSeconds;
    // Anything extra (a duplicate, a message of another subscription) would arrive right behind.
    await new Promise((resolve) => setTimeout(resolve, 500));
    localDelay.disable();
    const end = await server.stats();
    const metrics = await server.metrics();

    for (const client of clients) client.ws.close();
    await until(
      async () => (await server.stats({ gc: false })).connections === 0,
      'every connection to close',
    );
    // Closed connections may still be held for a moment (a ping round keeps what it pinged until its
    // timeout): the memory must come back within a few ping rounds.
    const closedAt = performance.now();
    let afterClients = await server.stats();
    while (
      afterClients.memory.heapUsed >= beforeClients.memory.heapUsed + HEAP_MARGIN &&
      performance.now() - closedAt < SETTLE_MS
    ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      afterClients = await server.stats();
    }
    const settleSeconds = (performance.now() - closedAt) / 1000;
    if (afterClients.memory.heapUsed >= beforeClients.memory.heapUsed + HEAP_MARGIN) {
      const { path } = (await server.request('heapSnapshot', { dir: tmpdir() })) as { path: string };
      console.log(`[reliability] soak: the server's memory did not come back; heap snapshot: ${path}`);
    }

    const delivered = clients.reduce((sum, c) => sum + c.received, 0);
    const problems = clients.flatMap((c, i) => c.problems.map((p) => `client ${i}: ${p}`));
    figure('soak', {
      clients: CLIENTS,
      rate_per_s: RATE,
      seconds: SECONDS,
      published: acceptedCount,
      delivered,
      per_client_avg: delivered / CLIENTS,
      fanout_per_s: delivered / publishSeconds,
      connect_s: connectSeconds,
      publish_s: publishSeconds,
      drain_after_s: drainSeconds,
      server_eld_p50_ms: end.eventLoopDelayMs.p50,
      server_eld_p99_ms: end.eventLoopDelayMs.p99,
      server_eld_max_ms: end.eventLoopDelayMs.max,
      clients_eld_p99_ms: localDelay.percentile(99) / 1e6,
      heap_start_mib: start.memory.heapUsed / MiB,
      heap_end_mib: end.memory.heapUsed / MiB,
      rss_start_mib: start.memory.rss / MiB,
      rss_end_mib: end.memory.rss / MiB,
      heap_no_clients_before_mib: beforeClients.memory.heapUsed / MiB,
      heap_no_clients_after_mib: afterClients.memory.heapUsed / MiB,
      memory_back_after_s: settleSeconds,
    });

    expect(problems.slice(0, 20)).toEqual([]);
    expect(acceptedCount).toBe(total);
    for (const client of clients) expect(client.received).toBe(client.profile.expected.length);
    // Nothing coalesced, no slow-consumer close, no unhandled anything in the server.
    expect(metrics).toMatch(/atp_ws_dropped_total 0\b/);
    expect(metrics).toMatch(/atp_ws_slow_consumer_closes_total 0\b/);
    expect(server.unhandled).toEqual([]);
    // No leak: with the same clients and the same (capped) history, the heap is back where it started.
    expect(end.memory.heapUsed).toBeLessThan(start.memory.heapUsed + HEAP_MARGIN);
    expect(afterClients.memory.heapUsed).toBeLessThan(beforeClients.memory.heapUsed + HEAP_MARGIN);
  });
});
