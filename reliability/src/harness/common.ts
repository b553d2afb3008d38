import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Disposer, testRedisUrl } from '@atp/test-utils';
import type { DataMessage } from '@atp/ws-protocol';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, expect } from 'vitest';

/**
 * The Redis of the Redis scenarios: a redis-server that vitest.config.ts's global setup started for
 * this run, or the existing one ATP_TEST_REDIS_URL names.
 */
export const REDIS_URL = testRedisUrl();

/** Source addresses to spread connections over (all of 127.0.0.0/8 is loopback on Linux). */
export const LOCAL_ADDRESSES = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 2}`);

/** Cleanups of the current test, run in reverse order even when it failed halfway. */
export const disposer = new Disposer();

/** Rejections and exceptions nobody handled, in this test process; each test fails on any. */
export const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));

beforeEach(() => {
  unhandled.length = 0;
});
afterEach(async () => {
  await disposer.run();
  expect(unhandled, 'unhandled rejections in the test process').toEqual([]);
});

/** The soft limit on open files of this process (`ulimit -n`). */
export function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = Number(line?.split(/\s+/)[3]);
  return Number.isFinite(soft) ? soft : 1024;
}

/**
 * How many sockets a scenario may open in this process: the wanted number, or
 * fewer when `ulimit -n` is lower (each client holds one descriptor here; the
 * server's side lives in the child process, which has its own limit).
 */
export function socketBudget(wanted: number, perClient = 1): number {
  const available = Math.floor((openFileLimit() - 256) / perClient);
  return Math.max(10, Math.min(wanted, available));
}

/** Prints one figure line, greppable in the run's output. */
export function figure(scenario: string, values: Record<string, unknown>): void {
  const text = Object.entries(values)
    .map(([key, value]) => `${key}=${typeof value === 'number' ? round(value) : String(value)}`)
    .join(' ');
  console.log(`[reliability] ${scenario}: ${text}`);
}

function round(value: number): number {
  return Number.isInteger(value) ? value : Math.round(value * 100) / 100;
}

/** The `p`-th percentile (0-100) of some numbers (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const MiB = 1024 * 1024;

/** Resolves when `condition` holds, polling every `everyMs`; rejects after `timeoutMs` naming `what`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export function log(suite: number, message: string, level: 'info' | 'error' = 'info'): DataMessage {
  return {
    type: 'log_entry',
    payload: { suite_execution_id: suite, level, message, timestamp: '2024-01-15T10:30:00Z' },
  };
}

/** Fails with a clear message when no Redis answers at {@link REDIS_URL}. */
export async function requireRedis(): Promise<void> {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`no Redis answers at ${REDIS_URL}: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}

/** A key prefix of this test alone; its keys are deleted after the test. */
export function uniquePrefix(name: string): string {
  const prefix = `atp-reliability:${name}:${randomBytes(4).toString('hex')}`;
  disposer.add(async () => {
    const redis = new Redis(REDIS_URL);
    // The broker keeps every key of a prefix under its hash tag, `{<prefix>}:…`.
    for (const pattern of [`{${prefix}}:*`, `${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
    await redis.quit();
  });
  return prefix;
}
