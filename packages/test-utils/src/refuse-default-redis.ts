// Vitest setup file (`setupFiles` in vitest.config.ts) of the packages whose tests use Redis.
// Port 6379 is where a developer's own Redis most likely listens, with their own data: a test
// process that tries to connect to it fails the test instead of reaching it, unless
// ATP_TEST_REDIS_URL names that port on purpose. Connections are refused before any byte is sent.
import { Socket } from 'node:net';
import { afterEach, expect } from 'vitest';

const DEFAULT_REDIS_PORT = 6379;

function allowedPort(): number | undefined {
  const given = process.env.ATP_TEST_REDIS_URL;
  if (!given) return undefined;
  try {
    return Number(new URL(given).port || DEFAULT_REDIS_PORT);
  } catch {
    return undefined;
  }
}

/** The port of a `Socket#connect` call: (options), (port, host?), or Node's normalized [options, cb]. */
function targetPort(args: readonly unknown[]): number | undefined {
  let [first] = args;
  if (Array.isArray(first)) [first] = first;
  if (typeof first === 'object' && first !== null && 'port' in first) return Number(first.port);
  if (typeof first === 'number') return first;
  if (typeof first === 'string' && /^\d+$/.test(first)) return Number(first);
  return undefined;
}

const refused: string[] = [];

/** The stacks of the connections refused since the last call (the check after each test empties it). */
export function takeRefusedConnections(): string[] {
  return refused.splice(0);
}

if (allowedPort() !== DEFAULT_REDIS_PORT) {
  const connect = Socket.prototype.connect;
  const guarded = function (this: Socket, ...args: unknown[]): Socket {
    if (targetPort(args) !== DEFAULT_REDIS_PORT) return Reflect.apply(connect, this, args);
    const error = new Error(
      `a test tried to connect to port ${DEFAULT_REDIS_PORT}, where a Redis the tests did not start may run: use testRedisUrl() from @atp/test-utils, or set ATP_TEST_REDIS_URL to use that server on purpose`,
    );
    refused.push(error.stack ?? error.message);
    process.nextTick(() => this.destroy(error));
    return this;
  };
  Socket.prototype.connect = guarded as typeof connect;
}

afterEach(() => {
  expect(takeRefusedConnections(), `connections refused to port ${DEFAULT_REDIS_PORT}`).toEqual([]);
});
