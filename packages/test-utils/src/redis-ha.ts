import { setTimeout as delay } from 'node:timers/promises';
import { RedisServer, redisCommand } from './redis-server.js';

/** Resolves once `check` resolves true (a rejection counts as false); rejects after `ms`. */
async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(50);
  }
}

/** Kills every server of `servers` at once (SIGKILL) and resolves once all exited. */
async function killAll(servers: readonly RedisServer[]): Promise<void> {
  await Promise.all(servers.map((server) => server.kill()));
}

export interface SentinelSetOptions {
  /** The master name the sentinels monitor. Default 'atp-primary'. */
  name?: string;
  /** `sentinel down-after-milliseconds`. Default 1000. */
  downAfterMs?: number;
  /** `sentinel failover-timeout`. Default 3000. */
  failoverTimeoutMs?: number;
}

/** A primary, a replica of it and three sentinels monitoring it (quorum 2), all on loopback. */
export interface SentinelSet {
  primary: RedisServer;
  replica: RedisServer;
  sentinels: RedisServer[];
  /** What `@atp/ws-redis` takes as its `sentinel` option. */
  sentinel: { sentinels: Array<{ host: string; port: number }>; name: string };
  /** Kills all five servers. */
  stop(): Promise<void>;
}

/**
 * Starts a {@link SentinelSet} and resolves once the replica is in sync and every sentinel knows the
 * replica and the two other sentinels (what a failover needs). Kills what it started when it fails.
 */
export async function startSentinelSet(options: SentinelSetOptions = {}): Promise<SentinelSet> {
  const name = options.name ?? 'atp-primary';
  const started: RedisServer[] = [];
  try {
    const primary = await RedisServer.start();
    started.push(primary);
    const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    started.push(replica);
    await until(
      async () =>
        /master_link_status:up/.test(String(await redisCommand(replica.port, ['INFO', 'replication']))),
      'the replica to sync',
    );
    const sentinels = await Promise.all(
      [0, 1, 2].map(() =>
        RedisServer.start({
          mode: 'sentinel',
          args: [
            ...['--sentinel', 'monitor', name, '127.0.0.1', String(primary.port), '2'],
            ...['--sentinel', 'down-after-milliseconds', name, String(options.downAfterMs ?? 1000)],
            ...['--sentinel', 'failover-timeout', name, String(options.failoverTimeoutMs ?? 3000)],
          ],
        }),
      ),
    );
    started.push(...sentinels);
    // A failover needs the sentinels to know the replica and each other (hello messages, every 2 s).
    for (const sentinel of sentinels) {
      await until(async () => {
        const replicas = (await redisCommand(sentinel.port, ['SENTINEL', 'REPLICAS', name])) as unknown[];
        const others = (await redisCommand(sentinel.port, ['SENTINEL', 'SENTINELS', name])) as unknown[];
        return replicas.length === 1 && others.length === 2;
      }, 'the sentinels to discover the replica and each other');
    }
    return {
      primary,
      replica,
      sentinels,
      sentinel: { sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name },
      stop: () => killAll(started),
    };
  } catch (error) {
    await killAll(started);
    throw error;
  }
}

/** The number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

export interface ClusterNode {
  server: RedisServer;
  /** `CLUSTER MYID` */
  id: string;
}

/** Three masters on loopback. */
export interface RedisClusterSet {
  nodes: ClusterNode[];
  /** What `@atp/ws-redis` takes as its `cluster` option. */
  cluster: { nodes: Array<{ host: string; port: number }> };
  /** Kills the three servers. */
  stop(): Promise<void>;
}

/**
 * Three masters on loopback, the 16384 slots shared out in thirds, no replicas (CLUSTER ADDSLOTSRANGE
 * + MEET, no redis-cli); resolves once every node reports `cluster_state:ok` and knows the others.
 * `extraArgs` go to every `redis-server` (e.g. `--cluster-node-timeout 1000`). Kills what it started
 * when it fails.
 */
export async function startRedisCluster(extraArgs: readonly string[] = []): Promise<RedisClusterSet> {
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      servers.push(
        await RedisServer.start({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', ...extraArgs],
        }),
      );
    }
    const third = Math.floor(CLUSTER_SLOTS / 3);
    for (const [i, server] of servers.entries()) {
      const first = i * third;
      const last = i === 2 ? CLUSTER_SLOTS - 1 : (i + 1) * third - 1;
      await redisCommand(server.port, ['CLUSTER', 'ADDSLOTSRANGE', String(first), String(last)]);
    }
    for (const server of servers.slice(1)) {
      await redisCommand(servers[0]?.port ?? 0, ['CLUSTER', 'MEET', '127.0.0.1', String(server.port)]);
    }
    for (const server of servers) {
      await until(
        async () => /cluster_state:ok/.test(String(await redisCommand(server.port, ['CLUSTER', 'INFO']))),
        'the cluster to be ok',
      );
      await until(
        async () =>
          String(await redisCommand(server.port, ['CLUSTER', 'NODES']))
            .trim()
            .split('\n').length === 3,
        'every node to know the others',
      );
    }
    const nodes = await Promise.all(
      servers.map(async (server) => ({
        server,
        id: String(await redisCommand(server.port, ['CLUSTER', 'MYID'])),
      })),
    );
    return {
      nodes,
      cluster: { nodes: servers.map((server) => ({ host: '127.0.0.1', port: server.port })) },
      stop: () => killAll(servers),
    };
  } catch (error) {
    await killAll(servers);
    throw error;
  }
}
