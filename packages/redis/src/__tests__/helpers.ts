import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Disposer, RawTestClient } from '@atp/test-utils';
import type { DataMessage } from '@atp/ws-protocol';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
} from '@atp/ws-server';
import { Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { RedisBroker, type RedisBrokerOptions } from '../index.js';

export const REDIS_URL = process.env.ATP_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const disposer = new Disposer();
afterEach(() => disposer.run());

/** A unique key prefix per test, deleted afterwards. */
export function uniquePrefix(): string {
  const prefix = `atp-test:${randomBytes(4).toString('hex')}`;
  disposer.add(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  return prefix;
}

/** Fails the suite with a clear message when no Redis answers. */
export async function requireRedis(url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(
      `these tests need a Redis server at ${url} (apt-get install redis-server; redis-server --daemonize yes --port 6379 --save "" --appendonly no): ${(error as Error).message}`,
    );
  } finally {
    redis.disconnect();
  }
}

export async function startRedisHub(
  brokerOptions: RedisBrokerOptions,
  hubOptions: ATPWebSocketServerOptions = {},
): Promise<{ hub: ATPWebSocketServer; url: string; broker: RedisBroker }> {
  const broker = new RedisBroker({ url: REDIS_URL, ...brokerOptions });
  const hub = createATPWebSocketServer({ port: 0, broker, presenceIntervalMs: 200, ...hubOptions });
  disposer.add(async () => {
    await hub.close();
    await broker.close();
  });
  await hub.ready;
  return { hub, broker, url: `ws://127.0.0.1:${hub.address()?.port}/api/ws/updates` };
}

export async function connect(url: string, query = ''): Promise<RawTestClient> {
  const client = await RawTestClient.connect(query ? `${url}?${query}` : url, { timeoutMs: 8000 });
  disposer.add(() => client.close());
  return client;
}

export function log(suite: number, message: string): DataMessage {
  return {
    type: 'log_entry',
    payload: { suite_execution_id: suite, level: 'info', message, timestamp: '2024-01-15T10:30:00Z' },
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private redis-server on its own port that a test may stop and restart. */
export class PrivateRedis {
  #process: ChildProcess | undefined;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      try {
        await requireRedis(this.url);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
