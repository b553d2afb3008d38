import { setTimeout as delay } from 'node:timers/promises';
import {
  type ClusterNode,
  CLUSTER_SLOTS as SLOTS,
  RedisServer,
  redisCommand,
  startRedisCluster,
} from '@atp/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisPublisher, RedisBroker } from '../index.js';
import { keysFor } from '../streams.js';
import { assertBuilt, HubProcess, LoadBalancer } from './fixtures/hub-processes.js';
import { ResumingClient } from './fixtures/resuming-client.js';
import { connect, disposer, log } from './helpers.js';

beforeAll(() => assertBuilt());

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(50);
  }
}

/** Three masters on loopback (see startRedisCluster), killed after the test. */
async function startCluster(extraArgs: readonly string[] = []): Promise<ClusterNode[]> {
  const set = await startRedisCluster(extraArgs);
  disposer.add(() => set.stop());
  return set.nodes;
}

/** The node that serves `slot`. */
async function ownerOf(nodes: readonly ClusterNode[], slot: number): Promise<ClusterNode> {
  const third = Math.floor(SLOTS / 3);
  const guess = nodes[Math.min(2, Math.floor(slot / third))] as ClusterNode;
  const reply = String(await redisCommand(guess.server.port, ['CLUSTER', 'NODES']));
  for (const line of reply.trim().split('\n')) {
    const [id, , flags, , , , , , ...ranges] = line.split(' ');
    if (!flags?.includes('master')) continue;
    for (const range of ranges) {
      const [from, to = from] = range.split('-').map(Number);
      if (from !== undefined && to !== undefined && slot >= from && slot <= to)
        return nodes.find((node) => node.id === id) as ClusterNode;
    }
  }
  throw new Error(`no owner of slot ${slot}`);
}

/** Moves `slot` from `from` to `to` the way redis-cli --cluster reshard does, keys included. */
async function migrateSlot(nodes: readonly ClusterNode[], slot: number, from: ClusterNode, to: ClusterNode) {
  const s = String(slot);
  await redisCommand(to.server.port, ['CLUSTER', 'SETSLOT', s, 'IMPORTING', from.id]);
  await redisCommand(from.server.port, ['CLUSTER', 'SETSLOT', s, 'MIGRATING', to.id]);
  for (;;) {
    const keys = (await redisCommand(from.server.port, ['CLUSTER', 'GETKEYSINSLOT', s, '100'])) as string[];
    if (keys.length === 0) break;
    await redisCommand(from.server.port, [
      ...['MIGRATE', '127.0.0.1', String(to.server.port), '', '0', '5000', 'KEYS'],
      ...keys,
    ]);
  }
  for (const node of [to, from, ...nodes.filter((n) => n !== to && n !== from)]) {
    await redisCommand(node.server.port, ['CLUSTER', 'SETSLOT', s, 'NODE', to.id]);
  }
}

function texts(client: ResumingClient): string[] {
  return client.texts();
}

describe('Redis Cluster (three masters)', () => {
  it('publishes, reads, resumes across hub processes, replays the whole run, lists every process clients, and follows the stream slot moved to another master during traffic', async () => {
    const nodes = await startCluster();
    const cluster = { nodes: nodes.map(({ server }) => ({ host: '127.0.0.1', port: server.port })) };
    const prefix = 'atp-test:cluster';
    const slot = Number(
      await redisCommand(nodes[0]?.server.port ?? 0, ['CLUSTER', 'KEYSLOT', keysFor(prefix).stream]),
    );
    // Every key of the deployment is in the stream's slot.
    for (const key of Object.values(keysFor(prefix))) {
      expect(Number(await redisCommand(nodes[0]?.server.port ?? 0, ['CLUSTER', 'KEYSLOT', key]))).toBe(slot);
    }

    const [a, b] = await Promise.all(
      [0, 1].map(() => HubProcess.start({ cluster, prefix, blockMs: 100, presenceIntervalMs: 200 })),
    );
    if (!a || !b) throw new Error('hub processes');
    disposer.add(() => a.kill());
    disposer.add(() => b.kill());
    const balancer = await LoadBalancer.start(a.port);
    disposer.add(() => balancer.close());
    const mover = new ResumingClient(balancer.url, 'cluster-mover', [{ topic: 'logs' }]);
    const stays = new ResumingClient(b.url, 'cluster-stays', [{ topic: 'logs' }]);
    for (const client of [mover, stays]) {
      disposer.add(() => client.close());
      await client.start();
    }
    const publisher = createRedisPublisher({ cluster, prefix });
    disposer.add(() => publisher.close());

    // Publish through both processes and a publisher.
    await Promise.all([
      a.publish({ label: 'a', count: 200, window: 4 }),
      b.publish({ label: 'b', count: 200, window: 4 }),
      (async () => {
        for (let i = 0; i < 200; i += 10)
          await publisher.publish(Array.from({ length: 10 }, (_, k) => log(1, `p-${i + k}`)));
      })(),
    ]);
    await Promise.all([mover.untilMessage('a-199'), stays.untilMessage('b-199')]);
    await until(async () => (await a.clients()).length === 2, 'both processes clients in the listing');

    // Resume across processes: kill the mover's process, publish meanwhile, point the balancer at b.
    balancer.pointTo(b.port);
    await a.kill();
    await b.publish({ label: 'away', count: 50 });
    await mover.untilMessage('away-49');
    expect(mover.resumes).toEqual([expect.objectContaining({ recovered: true, complete: true })]);

    // Whole-run replay, in process: every message from the start.
    const broker = new RedisBroker({ cluster, prefix });
    disposer.add(() => broker.close());
    const all = await broker.read('start');
    expect(all.complete).toBe(true);
    expect(all.entries.length).toBe(650);

    // The stream's slot moves to another master while messages keep coming.
    const owner = await ownerOf(nodes, slot);
    const target = nodes.find((node) => node !== owner) as ClusterNode;
    // One call at a time: calls in flight together have no order between them (one may be redirected and retried).
    const publishing = b.publishFor({ label: 'moving', ms: 3000, window: 1 });
    await delay(800);
    await migrateSlot(nodes, slot, owner, target);
    const moved = await publishing;
    expect((await ownerOf(nodes, slot)).id).toBe(target.id);
    await b.publish({ label: 'end', count: 1 });
    await Promise.all([mover, stays].map((client) => client.untilMessage('end-0', 15_000)));

    for (const client of [mover, stays]) {
      const got = texts(client);
      expect(new Set(got).size, `${client.clientId}: nothing twice`).toBe(got.length);
      for (const label of ['a', 'b', 'p', 'away']) {
        const count = label === 'away' ? 50 : 200;
        expect(got.filter((t) => t.startsWith(`${label}-`))).toEqual(
          Array.from({ length: count }, (_, i) => `${label}-${i}`),
        );
      }
      // Every acknowledged message published during the move arrived, in order.
      const during = got.filter((t) => t.startsWith('moving-')).map((t) => Number(t.slice(7)));
      expect(during).toEqual([...during].sort((x, y) => x - y));
      for (const i of moved.acked) expect(during, `${client.clientId}: moving-${i}`).toContain(i);
      // Gaps (a new epoch) are allowed only with a new epoch after them.
      expect(client.problems.filter((p) => !p.startsWith('sequence '))).toEqual([]);
    }
    const epochs = new Set(mover.data.map((m) => m.epoch)).size;
    // The hubs follow the master serving the slot now: the epoch's run id is the new owner's.
    const targetRun = /run_id:(\w+)/.exec(
      String(await redisCommand(target.server.port, ['INFO', 'server'])),
    )?.[1];
    await until(
      async () => (await redisCommand(target.server.port, ['GET', keysFor(prefix).run])) === targetRun,
      "the epoch's run id to be the new owner's",
    );
    // Nothing was lost by the move (MIGRATE moves keys whole): no gap, one epoch throughout.
    for (const client of [mover, stays]) {
      expect(new Set(client.data.map((m) => m.epoch)).size, `${client.clientId}: epochs`).toBe(1);
      expect(client.problems, `${client.clientId}: problems`).toEqual([]);
    }
    console.info(
      `cluster slot move: ${moved.acked.length} published during it, ${moved.failed.length} refused, refusals ${moved.refusals.map(([s, e]) => e - s).join(', ') || 'none'} ms; epochs a client saw: ${epochs}`,
    );
    // The listing works after the move too.
    const plain = await connect(b.url);
    await until(async () => (await b.clients()).length === 3, 'the listing after the move');
    await plain.close();
  }, 90_000);
});

/** `<label>-<i>` → [label, i] */
function parse(text: string): [string, number] {
  const dash = text.lastIndexOf('-');
  return [text.slice(0, dash), Number(text.slice(dash + 1))];
}

describe('Redis Cluster: failover of the master serving the stream', () => {
  it('follows kill -9 of that master while two hub processes publish: its replica is promoted, and every client gets every message once and in order, or an explicit gap covering exactly what Redis lost', async () => {
    // A failure is detected after cluster-node-timeout; the two other masters vote the replica in.
    const timeout = ['--cluster-node-timeout', '1000'];
    const nodes = await startCluster(timeout);
    const prefix = 'atp-test:cluster-failover';
    const slot = Number(
      await redisCommand(nodes[0]?.server.port ?? 0, ['CLUSTER', 'KEYSLOT', keysFor(prefix).stream]),
    );
    const owner = await ownerOf(nodes, slot);
    const replica = await RedisServer.start({
      args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', ...timeout],
    });
    disposer.add(() => replica.kill());
    await redisCommand(replica.port, ['CLUSTER', 'MEET', '127.0.0.1', String(owner.server.port)]);
    await until(
      async () =>
        String(await redisCommand(replica.port, ['CLUSTER', 'NODES'])).includes(owner.id) &&
        String(await redisCommand(owner.server.port, ['CLUSTER', 'NODES']))
          .trim()
          .split('\n').length === 4,
      'the replica to join the cluster',
    );
    await redisCommand(replica.port, ['CLUSTER', 'REPLICATE', owner.id]);
    await until(
      async () =>
        /master_link_status:up/.test(String(await redisCommand(replica.port, ['INFO', 'replication']))),
      'the replica to sync',
    );

    const cluster = { nodes: nodes.map(({ server }) => ({ host: '127.0.0.1', port: server.port })) };
    const hubs = await Promise.all([0, 1].map(() => HubProcess.start({ cluster, prefix, blockMs: 100 })));
    for (const hub of hubs) disposer.add(() => hub.kill());
    const clients: ResumingClient[] = [];
    for (const [h, hub] of hubs.entries()) {
      for (const k of [0, 1]) {
        const client = new ResumingClient(hub.url, `cluster-failover-${h}-${k}`, [{ topic: 'logs' }]);
        disposer.add(() => client.close());
        await client.start();
        clients.push(client);
      }
    }
    const publishing = hubs.map((hub, h) =>
      hub.publishFor({ label: `hub${h}`, ms: 12_000, window: 1, settleMs: 20_000 }),
    );
    await delay(2000);
    const killedAt = Date.now();
    await owner.server.kill();
    await until(
      async () => /role:master/.test(String(await redisCommand(replica.port, ['INFO', 'replication']))),
      'the replica to be promoted',
    );
    const promotedAt = Date.now();
    const results = await Promise.all(publishing);
    for (const [h, result] of results.entries()) {
      expect(
        result.acked.some((i) => i > Math.max(0, ...result.failed.map(([f]) => f))),
        `hub${h} published after the failover`,
      ).toBe(true);
    }
    await hubs[0]?.publish({ label: 'end', count: 1 });
    await Promise.all(clients.map((client) => client.untilMessage('end-0', 20_000)));

    // What the promoted replica holds: anything acknowledged and not there was lost by Redis.
    const held = new Set(
      (
        (await redisCommand(replica.port, ['XRANGE', keysFor(prefix).stream, '-', '+'])) as Array<
          [string, string[]]
        >
      ).map(([, fields]) => {
        const json = fields[fields.indexOf('m') + 1] ?? '{}';
        return String((JSON.parse(json) as { payload: { message: string } }).payload.message);
      }),
    );
    const acked = results.flatMap((result, h) => result.acked.map((i) => `hub${h}-${i}`));
    const lost = acked.filter((text) => !held.has(text));
    const gaps: number[] = [];
    for (const client of clients) {
      const got = client.texts();
      expect(new Set(got).size, `${client.clientId}: nothing twice`).toBe(got.length);
      const last: Record<string, number> = {};
      for (const text of got) {
        const [label, i] = parse(text);
        expect(i, `${client.clientId}: ${text} in order`).toBeGreaterThan(last[label] ?? -1);
        last[label] = i;
      }
      const holes: number[] = [];
      client.data.forEach((m, k) => {
        const before = client.data[k - 1];
        if (before && m.sequence !== (before.sequence as number) + 1) {
          holes.push(k);
          expect(m.epoch, `${client.clientId}: a new epoch after the gap`).not.toBe(before.epoch);
        }
      });
      expect(client.problems.every((p) => p.startsWith('sequence '))).toBe(true);
      // The master serving the stream changed (a new run id): never silent.
      expect(holes.length, `${client.clientId}: an explicit gap at the failover`).toBeGreaterThan(0);
      const have = new Set(got);
      const missing = acked.filter((text) => !have.has(text));
      expect(
        missing.filter((text) => held.has(text)),
        `${client.clientId}: missing though Redis has it`,
      ).toEqual([]);
      gaps.push(missing.length);
    }
    const refused = results.flatMap((result) =>
      result.refusals.filter(([, end]) => end >= killedAt).map(([start, end]) => end - start),
    );
    console.info(
      `cluster master failover: replica promoted ${promotedAt - killedAt} ms after kill -9; publishing refused for ` +
        `${Math.max(0, ...refused)} ms; ${acked.length} messages acknowledged, ${lost.length} lost by Redis, ` +
        `the clients' gaps covered ${Math.min(...gaps)}–${Math.max(...gaps)} messages`,
    );
  }, 120_000);
});
