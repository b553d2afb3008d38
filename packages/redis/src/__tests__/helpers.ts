import { randomBytes } from 'node:crypto';
import { Disposer, RawTestClient, testRedisUrl } from '@atp/test-utils';
import type { DataMessage } from '@atp/ws-protocol';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
} from '@atp/ws-server';
import { Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { RedisBroker, type RedisBrokerOptions } from '../index.js';
import { hashTagged } from '../streams.js';

/**
 * The Redis these tests share: a redis-server that vitest.config.ts's global setup started for this
 * run, or the existing one ATP_TEST_REDIS_URL names. A test that stops or kills Redis starts a
 * RedisServer of its own instead.
 */
export const REDIS_URL = testRedisUrl();
export const disposer = new Disposer();
afterEach(() => disposer.run());

/** A unique key prefix per test, deleted afterwards. */
export function uniquePrefix(): string {
  const prefix = `atp-test:${randomBytes(4).toString('hex')}`;
  disposer.add(async () => {
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${hashTagged(prefix)}:*`);
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
    throw new Error(`no Redis answers at ${url}: ${(error as Error).message}`);
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
