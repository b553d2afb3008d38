import { createRedisPublisher, type RedisPublisher } from '@atp/ws-redis';
import type { DataMessage } from '@atp/ws-protocol';
import { type ChildBrokerOptions, type ChildHubOptions, ServerProcess } from '../harness/server-process.js';
import { AtpClient, RawClient, Route } from './clients.js';
import { makeMessage, SUB_POOL, type Sub } from './messages.js';
import { type ClientRecord, Clock, checkRun, type Published, type Violation } from './model.js';
import { freePort, type KeyDump, OwnRedis } from './redis-server.js';
import { describeOp, type Op, type Schedule } from './schedule.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const PUBLISH_TOKEN = 'checker-publish';
const PREFIX = 'chk';
/** The hub's limits under test: small, so that slow readers reach them within a schedule. */
export const HUB_OPTIONS: ChildHubOptions = {
  softBufferedBytes: 64 * KiB,
  maxBufferedBytes: 512 * KiB,
  pingInterval: 1500,
  pingTimeout: 1500,
  sessionTtlMs: 60_000,
};
export const MEMORY_HISTORY_BYTES = 4 * MiB;
export const REDIS_HISTORY_MESSAGES = 3000;

/** What one schedule did and found. */
export interface RunResult {
  readonly schedule: Schedule;
  readonly violations: Violation[];
  /** Operations executed (index, description, note). */
  readonly opLog: string[];
  /** Index of the op that published each message id. */
  readonly opOfK: number[];
  readonly published: number;
  readonly delivered: number;
  readonly faults: Record<string, number>;
  readonly heap: { hub: number; baseline: number; peak: number; bound: number }[];
  readonly ms: number;
  /** What each client recorded, and the publish log (for a trace of a failing seed). */
  readonly records: ClientRecord[];
  readonly log: readonly Published[];
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one schedule against real hub processes (and its own Redis), then checks every client against the model. */
export async function runSchedule(schedule: Schedule, mask?: readonly boolean[]): Promise<RunResult> {
  const started = performance.now();
  const clock = new Clock();
  const log: Published[] = [];
  const resets: number[] = [];
  const opLog: string[] = [];
  const opOfK: number[] = [];
  const violations: Violation[] = [];
  const faults: Record<string, number> = {};
  const fault = (name: string) => {
    faults[name] = (faults[name] ?? 0) + 1;
  };
  const redis = schedule.broker === 'redis' ? await OwnRedis.create(!schedule.redisDownAtStart) : undefined;
  const ports = await Promise.all(Array.from({ length: schedule.hubs }, () => freePort()));
  const hubs: Array<ServerProcess | undefined> = [];
  const raws: RawClient[] = [];
  const atps: AtpClient[] = [];
  const clientOf: Array<RawClient | AtpClient> = [];
  let publisher: RedisPublisher | undefined;
  const heap = ports.map((_, hub) => ({ hub, baseline: 0, peak: 0, bound: 0 }));
  let publishedBytes = 0;
  let liveness = false;

  const brokerOptions = (): ChildBrokerOptions =>
    redis
      ? { kind: 'redis', url: redis.url, prefix: PREFIX, blockMs: 200, maxMessages: REDIS_HISTORY_MESSAGES }
      : { kind: 'memory', maxBytes: MEMORY_HISTORY_BYTES };
  const startHub = async (i: number, awaitReady: boolean): Promise<ServerProcess> => {
    const hub = await ServerProcess.start({
      port: ports[i],
      hubOptions: HUB_OPTIONS,
      brokerOptions: brokerOptions(),
      rest: { publishToken: PUBLISH_TOKEN },
      awaitReady,
    });
    hubs[i] = hub;
    return hub;
  };
  const url = (hub: number) => `ws://127.0.0.1:${ports[hub]}/api/ws/updates`;
  const ensureReady = async (i: number, why: string) => {
    const hub = hubs[i];
    const state = hub
      ? await hub.ready(10_000).catch((e: Error) => ({ ready: false, error: e.message }))
      : { ready: false, error: 'not started' };
    if (!state.ready && !liveness) {
      liveness = true;
      violations.push({
        kind: 'liveness',
        client: `hub ${i}`,
        ks: [],
        what: `hub ${i} not ready 10 s after ${why}: ${state.error ?? ''}`,
      });
    }
    return state.ready;
  };
  const sampleHeap = async () => {
    for (const [i, hub] of hubs.entries()) {
      if (!hub?.alive) continue;
      const stats = await withTimeout(hub.stats({ gc: true }), 5000, 'stats').catch(() => undefined);
      if (!stats) continue;
      const h = heap[i] as (typeof heap)[number];
      if (h.baseline === 0) h.baseline = stats.memory.heapUsed;
      h.peak = Math.max(h.peak, stats.memory.heapUsed);
    }
  };

  try {
    // Start.
    if (schedule.redisDownAtStart) {
      fault('redis-down-at-start');
      for (let i = 0; i < schedule.hubs; i++) await startHub(i, false);
      await sleep(400);
      await redis?.start();
      for (let i = 0; i < schedule.hubs; i++) await ensureReady(i, 'Redis came up (it was down at start)');
    } else {
      for (let i = 0; i < schedule.hubs; i++) await startHub(i, true);
    }
    if (redis) publisher = createRedisPublisher({ url: redis.url, prefix: PREFIX });
    await sampleHeap();
    for (const [i, spec] of schedule.clients.entries()) {
      const name = `c${i}`;
      if (spec.kind === 'raw') {
        const client = new RawClient(name, clock);
        raws.push(client);
        clientOf.push(client);
        for (const s of spec.subs) client.subscribe(SUB_POOL[s] as Sub);
        await client.open(url(spec.hub), spec.hub).catch(() => {});
      } else {
        const route = new Route(ports[spec.hub] as number);
        await route.listen();
        const client = new AtpClient(name, clock, route, spec.fallback);
        atps.push(client);
        clientOf.push(client);
        for (const s of spec.subs) client.subscribe(SUB_POOL[s] as Sub);
        await withTimeout(client.ws.connect(), 5000, `${name} connect`).catch(() => {});
      }
    }
    await sleep(100);

    const blockWebSocket = (client: AtpClient, blocked: boolean) => {
      client.blockWebSocket(blocked);
      if (blocked) fault('websocket-blocked');
    };
    const reopen = async (client: RawClient, hub = client.hub, craft?: 'future' | 'gone') => {
      try {
        await client.open(url(hub), hub, craft);
        return true;
      } catch {
        return false;
      }
    };

    let dumps: KeyDump[] | undefined;
    for (const [index, op] of schedule.ops.entries()) {
      if (mask && !mask[index]) continue;
      let note = '';
      const client = 'client' in op ? clientOf[op.client] : undefined;
      if (client instanceof RawClient && !client.connected && op.op !== 'resume' && op.op !== 'drop')
        await reopen(client);
      switch (op.op) {
        case 'publish': {
          // Ids are the log indexes.
          const first = log.length;
          const batch: DataMessage[] = op.shapes.map((shape, j) =>
            makeMessage(first + j, shape, op.pad, op.shared),
          );
          const start = clock.tick();
          for (const [j, message] of batch.entries()) {
            log.push({ k: first + j, message, status: 'uncertain', start, end: start });
            opOfK[first + j] = index;
            publishedBytes += JSON.stringify(message).length;
          }
          let ok = false;
          try {
            if (op.via === 'publisher' && publisher) {
              await withTimeout(publisher.publish(batch), 5000, 'publisher');
              ok = true;
            } else if (op.via === 'rest') {
              const response = await withTimeout(
                fetch(`http://127.0.0.1:${ports[op.hub]}/api/ws/publish`, {
                  method: 'POST',
                  headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
                  body: JSON.stringify(batch),
                }),
                5000,
                'REST publish',
              );
              ok = response.status === 202;
              if (!ok) note = `HTTP ${response.status}`;
            } else {
              const hub = hubs[op.hub];
              if (hub?.alive) {
                await withTimeout(hub.publish(batch), 5000, 'hub publish');
                ok = true;
              }
            }
          } catch (error) {
            note = (error as Error).message.slice(0, 80);
          }
          const end = clock.tick();
          for (let k = first; k < log.length; k++) {
            const p = log[k] as Published;
            p.status = ok ? 'ok' : 'uncertain';
            p.end = end;
          }
          note = `k=${first}..${log.length - 1}${ok ? '' : ` refused ${note}`}`;
          break;
        }
        case 'subscribe': {
          const sub = SUB_POOL[op.sub] as Sub;
          if (client instanceof RawClient) {
            const from = op.from ? client.fromFor(op.from, op.pick) : undefined;
            client.subscribe(sub, from);
            if (from) note = `from ${JSON.stringify(from.from)}`;
          } else client?.subscribe(sub);
          break;
        }
        case 'unsubscribe':
          client?.unsubscribe(SUB_POOL[op.sub] as Sub);
          break;
        case 'drop':
          if (client instanceof RawClient) client.close();
          else if (client) {
            if (op.blockWebSocket !== undefined) blockWebSocket(client, op.blockWebSocket);
            client.route.cut();
          }
          fault('client-drop');
          break;
        case 'resume':
          if (client instanceof RawClient) {
            if (!(await reopen(client, op.hub, op.craft))) note = 'could not connect';
            if (op.craft) fault(`resume-${op.craft}`);
          } else if (client) {
            if (op.blockWebSocket !== undefined) blockWebSocket(client, op.blockWebSocket);
            client.route.target = ports[op.hub] as number;
            client.route.cut();
          }
          fault('client-resume');
          break;
        case 'pause':
          if (client instanceof RawClient) client.pause();
          fault('reader-stopped');
          break;
        case 'unpause':
          if (client instanceof RawClient) client.unpause();
          break;
        case 'kill': {
          await hubs[op.hub]?.kill();
          fault('hub-kill-9');
          if (!redis) resets.push(clock.tick());
          await sleep(50);
          await startHub(op.hub, false);
          if (!redis || redis.running) {
            if (!(await ensureReady(op.hub, 'a kill -9 and restart'))) note = 'not ready';
          }
          break;
        }
        case 'redis-restart':
          if (redis) {
            await redis.kill();
            resets.push(clock.tick());
            await sleep(200);
            await redis.start();
            fault('redis-restart-empty');
          }
          break;
        case 'redis-snapshot':
          if (redis?.running) {
            dumps = await redis.dump(PREFIX).catch(() => undefined);
            note = `${dumps?.length ?? 0} keys`;
          }
          break;
        case 'redis-rollback':
          if (redis?.running && dumps) {
            await redis.restore(PREFIX, dumps);
            resets.push(clock.tick());
            fault('redis-rollback');
            dumps = undefined;
          } else note = 'no snapshot: skipped';
          break;
        case 'redis-failover':
          if (redis?.running) {
            // Writes in the lag window are acknowledged and then lost: the gap must say so.
            resets.push(clock.tick());
            await redis.failover(op.lagMs);
            resets.push(clock.tick());
            fault(op.lagMs > 0 ? 'redis-failover-lossy' : 'redis-failover');
          } else note = 'Redis down: skipped';
          break;
        case 'sleep':
          await sleep(op.ms);
          break;
      }
      opLog.push(`#${index} ${describeOp(op)}${note ? ` [${note}]` : ''}`);
      if (index % 8 === 7) await sampleHeap();
      await sleep(5);
    }

    // Quiesce: everything up, every client connected and reading, until nothing arrives for a while.
    if (redis && !redis.running) await redis.start();
    for (let i = 0; i < schedule.hubs; i++) {
      if (!hubs[i]?.alive) await startHub(i, false);
      await ensureReady(i, 'the end of the schedule');
    }
    await sleep(600);
    // A paused socket notices that its hub died only once it reads again: unpause all, then look.
    for (const client of raws) client.unpause();
    await sleep(300);
    for (const client of raws) {
      if (!client.connected && !(await reopen(client))) {
        await sleep(500);
        await reopen(client);
      }
    }
    const connectedDeadline = Date.now() + 10_000;
    while (atps.some((c) => !c.connected) && Date.now() < connectedDeadline) await sleep(50);
    // A fence: one message of every shape (each subscription of the pool matches one), so that a
    // gap marked under a live connection (shown by the next message's sequence) becomes visible.
    {
      const first = log.length;
      const fence = Array.from({ length: 18 }, (_, shape) => makeMessage(first + shape, shape, 0, false));
      const start = clock.tick();
      for (const [j, message] of fence.entries()) {
        log.push({ k: first + j, message, status: 'uncertain', start, end: start });
        opOfK[first + j] = schedule.ops.length;
      }
      const ok = await withTimeout(
        hubs[0]?.publish(fence) ?? Promise.reject(new Error('no hub')),
        5000,
        'fence',
      )
        .then(() => true)
        .catch(() => false);
      const end = clock.tick();
      for (let k = first; k < log.length; k++)
        Object.assign(log[k] as Published, { status: ok ? 'ok' : 'uncertain', end });
      opLog.push(
        `#${schedule.ops.length} fence: publish 18 via hub on hub 0 [k=${first}..${log.length - 1}${ok ? '' : ' refused'}]`,
      );
    }
    for (const client of raws) client.ping();
    const events = () => [...raws, ...atps].reduce((n, c) => n + c.record.events.length, 0);
    let last = -1;
    let lastChange = Date.now();
    const idleDeadline = Date.now() + 20_000;
    while (Date.now() < idleDeadline) {
      const now = events();
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > 1500) break;
      await sleep(100);
    }
    await sampleHeap();
    const clients = raws.length + atps.length;
    for (const h of heap) {
      const history = redis ? publishedBytes : Math.min(publishedBytes, MEMORY_HISTORY_BYTES);
      h.bound = h.baseline + 4 * history + clients * 3 * (HUB_OPTIONS.maxBufferedBytes as number) + 24 * MiB;
      if (h.peak > h.bound)
        violations.push({
          kind: 'memory',
          client: `hub ${h.hub}`,
          ks: [],
          what: `heap ${mib(h.peak)} MiB over the bound ${mib(h.bound)} MiB (baseline ${mib(h.baseline)} MiB)`,
        });
    }
    for (const hub of hubs)
      for (const u of hub?.unhandled ?? [])
        violations.push({ kind: 'liveness', client: 'hub', ks: [], what: u.slice(0, 300) });
    const overSse = atps.reduce((n, c) => n + c.sseConnections, 0);
    if (overSse > 0) faults['sse-connections'] = overSse;
    const records = [...raws, ...atps].map((c) => c.record);
    // A hub that never became ready makes every later loss a consequence: report the cause alone.
    if (!liveness) violations.push(...checkRun({ log, resets }, records));
    const delivered = records.reduce((n, r) => n + r.events.filter((e) => e.kind === 'data').length, 0);
    return {
      schedule,
      violations,
      opLog,
      opOfK,
      published: log.length,
      delivered,
      faults,
      heap,
      ms: performance.now() - started,
      records,
      log,
    };
  } finally {
    for (const client of raws) client.close();
    for (const client of atps) {
      client.ws.disconnect();
      await client.route.close();
    }
    await publisher?.close().catch(() => {});
    await Promise.all(hubs.map((hub) => hub?.kill()));
    await redis?.kill();
  }
}

function mib(bytes: number): number {
  return Math.round((bytes / MiB) * 10) / 10;
}

/** The operations that matter for one violation: those of its client, the faults, and the publishes of its messages. */
export function minimalLog(result: RunResult, violation: Violation): string[] {
  const client = /^c(\d+)$/.exec(violation.client)?.[1];
  const publishOps = new Set(violation.ks.map((k) => result.opOfK[k]));
  return result.opLog.filter((line) => {
    const index = Number(/^#(\d+)/.exec(line)?.[1]);
    const op = result.schedule.ops[index] as Op | undefined;
    if (!op) return true;
    if (op.op === 'sleep' || op.op === 'redis-snapshot') return op.op === 'redis-snapshot';
    if ('client' in op) return client === undefined || String(op.client) === client;
    if (op.op === 'publish') return publishOps.has(index) || client === undefined;
    return true;
  });
}
