import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A free TCP port on loopback (closed again at once; good enough for a test). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A key and its DUMP, to RESTORE it later. */
export interface KeyDump {
  readonly key: string;
  readonly dump: Buffer;
  readonly ttlMs: number;
}

/**
 * A `redis-server` of the checker's own on a loopback port (never the shared
 * one on 6379), without persistence, so that a kill and a start is "Redis
 * restarted empty". It can be stopped (kill -9) and started again on the same
 * port, and its keys under a prefix dumped and restored (a failover to a
 * replica that lags behind).
 */
export class OwnRedis {
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** Picks a free port; `start` is false to leave it down (Redis unreachable at start). */
  static async create(start = true): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    if (start) await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /**
   * Failover of the primary, as Sentinel does it, on the same address: a replica is started and
   * synced, promoted (it stops replicating), the primary goes on acknowledging writes for `lagMs`
   * (what the replica never gets: lost by the failover), then the primary is killed (-9) and a new
   * process on its port starts from the replica's data (a new run id, as after a promotion).
   */
  async failover(lagMs: number): Promise<void> {
    if (!this.#child) return;
    const dir = mkdtempSync(join(tmpdir(), 'atp-checker-replica-'));
    const replicaPort = await freePort();
    const replica = spawn(
      'redis-server',
      [
        ...['--port', String(replicaPort), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
        ...['--appendonly', 'no', '--loglevel', 'warning', '--replicaof', '127.0.0.1', String(this.port)],
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => replica.once('exit', resolve));
    try {
      const at = new OwnRedis(replicaPort);
      const deadline = Date.now() + 10_000;
      while (!(await at.#synced())) {
        if (Date.now() > deadline) throw new Error('the replica did not sync');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await at.#with((redis) => redis.replicaof('NO', 'ONE'));
      await new Promise((resolve) => setTimeout(resolve, lagMs));
      await at.#with((redis) => redis.save());
      await this.kill();
      await this.start(['--dir', dir, '--dbfilename', 'dump.rdb']);
    } finally {
      replica.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async #synced(): Promise<boolean> {
    try {
      return await this.#with(async (redis) => /master_link_status:up/.test(await redis.info('replication')));
    } catch {
      return false;
    }
  }

  /** Starts an empty redis-server on the port (or one loading what `args` say) and waits until it answers. */
  async start(args: readonly string[] = []): Promise<void> {
    if (this.#child) return;
    const child = spawn(
      'redis-server',
      [
        ...args,
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    this.#child = child;
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await this.#answers()) return;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Kills the server at once (SIGKILL): everything it held is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.#child = undefined;
  }

  /** DUMPs every key under `prefix` (with its TTL). */
  async dump(prefix: string): Promise<KeyDump[]> {
    return this.#with(async (redis) => {
      const out: KeyDump[] = [];
      for (const key of await this.#keys(redis, prefix)) {
        const dump = await redis.dumpBuffer(key);
        if (!dump) continue;
        const ttl = await redis.pttl(key);
        out.push({ key, dump, ttlMs: Math.max(ttl, 0) });
      }
      return out;
    });
  }

  /**
   * Puts the keys under `prefix` back as they were at `dumps` (RESTORE ... REPLACE), and deletes
   * those created since: what a failover to a replica that lagged behind leaves.
   */
  async restore(prefix: string, dumps: readonly KeyDump[]): Promise<void> {
    await this.#with(async (redis) => {
      const keep = new Set(dumps.map((d) => d.key));
      const extra = (await this.#keys(redis, prefix)).filter((key) => !keep.has(key));
      const multi = redis.multi();
      if (extra.length > 0) multi.del(...extra);
      for (const { key, dump, ttlMs } of dumps) multi.restore(key, ttlMs, dump, 'REPLACE');
      await multi.exec();
    });
  }

  async #keys(redis: Redis, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    // @atp/ws-redis keeps a deployment's keys under the hash tag `{<prefix>}` (one cluster slot).
    for (const pattern of [`{${prefix}}:*`, `${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
    }
    return keys;
  }

  async #with<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
      return await use(redis);
    } finally {
      redis.disconnect();
    }
  }

  async #answers(): Promise<boolean> {
    try {
      return await this.#with(async (redis) => (await redis.ping()) === 'PONG');
    } catch {
      return false;
    }
  }
}
