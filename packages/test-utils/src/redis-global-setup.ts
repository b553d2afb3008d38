// Vitest global setup of the packages whose tests use Redis (`globalSetup` in their
// vitest.config.ts): one redis-server of their own for the whole run, stopped at the end.
// ATP_TEST_REDIS_URL=redis://host:port makes the tests use that existing server instead.
import type { TestProject } from 'vitest/node';
import { RedisServer } from './redis-server.js';
import './test-redis.js';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.ATP_TEST_REDIS_URL;
  if (given) {
    project.provide('atpTestRedisUrl', given);
    return undefined;
  }
  const server = await RedisServer.start();
  project.provide('atpTestRedisUrl', server.url);
  return () => server.stop();
}
