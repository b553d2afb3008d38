import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis of this test run: ATP_TEST_REDIS_URL, or the redis-server the global setup started. */
    atpTestRedisUrl: string;
  }
}

/**
 * The URL of the Redis the tests of this run share: the redis-server started by
 * `@atp/test-utils/redis-global-setup` (listed in the package's vitest.config.ts), or the existing
 * server that ATP_TEST_REDIS_URL names.
 */
export function testRedisUrl(): string {
  const url = inject('atpTestRedisUrl');
  if (!url) {
    throw new Error(
      "no Redis for the tests: add globalSetup: ['@atp/test-utils/redis-global-setup'] to this package's vitest.config.ts",
    );
  }
  return url;
}
