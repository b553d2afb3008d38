import { connect, createConnection, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Disposer } from '../disposer.js';
import { RedisServer, redisCommand } from '../redis-server.js';
import { takeRefusedConnections } from '../refuse-default-redis.js';

const disposer = new Disposer();
afterEach(() => disposer.run());

/** 192.0.2.1 is TEST-NET-1 (documentation only): were the guard to let a connection through, it
 * would reach nobody's Redis. */
const NOWHERE = '192.0.2.1';

function failure(socket: Socket): Promise<Error> {
  disposer.add(() => socket.destroy());
  return new Promise((resolve, reject) => {
    socket.once('error', resolve);
    socket.once('connect', () => reject(new Error('connected')));
  });
}

describe('refuse-default-redis (a setup file of the packages whose tests use Redis)', () => {
  it.skipIf(process.env.ATP_TEST_REDIS_URL !== undefined)(
    'refuses every form of connection to port 6379 before it is made, and fails the test',
    async () => {
      const attempts = [
        connect(6379, NOWHERE),
        connect({ port: 6379, host: NOWHERE }),
        createConnection({ port: 6379, host: NOWHERE }),
        new Socket().connect(6379, NOWHERE),
      ];
      for (const error of await Promise.all(attempts.map(failure))) {
        expect(error.message).toMatch(/a test tried to connect to port 6379/);
      }
      expect(takeRefusedConnections()).toHaveLength(attempts.length);
    },
  );

  it('lets connections to other ports through', async () => {
    const server = await RedisServer.start();
    disposer.add(() => server.stop());
    expect(await redisCommand(server.port, ['PING'])).toBe('PONG');
    expect(takeRefusedConnections()).toEqual([]);
  });
});
