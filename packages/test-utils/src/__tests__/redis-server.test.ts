import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Disposer } from '../disposer.js';
import { RedisError, RedisServer, redisCommand } from '../redis-server.js';

const disposer = new Disposer();
afterEach(() => disposer.run());

async function started(options: Parameters<typeof RedisServer.start>[0] = {}): Promise<RedisServer> {
  const server = await RedisServer.start(options);
  disposer.add(() => server.kill());
  return server;
}

/** Whether a process with this id exists (zombies of our own children aside). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function info(port: number, section: string): Promise<string> {
  const reply = await redisCommand(port, ['INFO', section]);
  if (typeof reply !== 'string') throw new Error(`INFO ${section}: ${String(reply)}`);
  return reply;
}

describe('RedisServer', () => {
  it('starts a redis-server of its own on a free loopback port, without persistence', async () => {
    const server = await started();
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await info(server.port, 'server')).toContain(`process_id:${server.pid}`);
    expect(await redisCommand(server.port, ['CONFIG', 'GET', 'save'])).toEqual(['save', '']);
    expect(await redisCommand(server.port, ['CONFIG', 'GET', 'appendonly'])).toEqual(['appendonly', 'no']);
    expect(await redisCommand(server.port, ['CONFIG', 'GET', 'bind'])).toEqual(['bind', '127.0.0.1']);
  });

  it('starts side by side on different ports', async () => {
    const [a, b] = await Promise.all([started(), started()]);
    expect(a?.port).not.toBe(b?.port);
    expect(await redisCommand(a!.port, ['SET', 'k', 'a'])).toBe('OK');
    expect(await redisCommand(b!.port, ['GET', 'k'])).toBeNull();
  });

  it('kill() is a crash, start() brings it back on the same port, empty', async () => {
    const server = await started();
    const { port, pid } = server;
    await redisCommand(port, ['SET', 'before', '1']);
    await server.kill();
    expect(server.running).toBe(false);
    expect(alive(pid!)).toBe(false);
    await expect(redisCommand(port, ['PING'])).rejects.toThrow();
    await server.start();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    expect(await redisCommand(port, ['GET', 'before'])).toBeNull();
  });

  it('stop() shuts down, restart() stops and starts on the same port, empty', async () => {
    const server = await started();
    await redisCommand(server.port, ['SET', 'before', '1']);
    const first = server.pid;
    await server.restart();
    expect(server.pid).not.toBe(first);
    expect(await redisCommand(server.port, ['GET', 'before'])).toBeNull();
    const dir = server.dir;
    expect(dir && existsSync(dir)).toBe(true);
    await server.stop();
    expect(existsSync(dir!)).toBe(false); // its folder goes with it
    await expect(redisCommand(server.port, ['PING'])).rejects.toThrow();
    await server.stop(); // twice is fine
  });

  it('runs as a Sentinel or with cluster mode on', async () => {
    const sentinel = await started({ mode: 'sentinel' });
    expect(await info(sentinel.port, 'server')).toContain('redis_mode:sentinel');
    expect(await redisCommand(sentinel.port, ['SENTINEL', 'MASTERS'])).toEqual([]);
    const node = await started({ args: ['--cluster-enabled', 'yes'] });
    expect(await info(node.port, 'cluster')).toContain('cluster_enabled:1');
  });

  it('says why when redis-server refuses its arguments', async () => {
    await expect(RedisServer.start({ args: ['--no-such-option', 'x'] })).rejects.toThrow(
      /exited at start: .*no-such-option/i,
    );
  });

  it('an error reply resolves as a RedisError', async () => {
    const server = await started();
    expect(await redisCommand(server.port, ['NO-SUCH-COMMAND'])).toBeInstanceOf(RedisError);
  });

  it.runIf(process.platform === 'linux')(
    'the server dies with the test process that started it, even when that process is SIGKILLed',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'atp-redis-orphan-'));
      disposer.add(() => rmSync(dir, { recursive: true, force: true }));
      const pidsFile = join(dir, 'pids.json');
      // A vitest run of its own whose test starts a server, writes the pids, then waits forever.
      const vitest = spawn(
        process.execPath,
        [VITEST, 'run', '--root', FIXTURES, '--config', join(FIXTURES, 'vitest.config.ts')],
        { env: { ...process.env, ATP_ORPHAN_PIDS: pidsFile }, stdio: 'ignore', detached: true },
      );
      disposer.add(() => killGroup(vitest));
      await expect.poll(() => existsSync(pidsFile), { timeout: 20_000, interval: 50 }).toBe(true);
      const {
        worker,
        redis,
        dir: serverDir,
      } = JSON.parse(readFileSync(pidsFile, 'utf8')) as {
        worker: number;
        redis: number;
        dir: string;
      };
      // The test process dies too suddenly to remove the folder: this test does.
      disposer.add(() => rmSync(serverDir, { recursive: true, force: true }));
      expect(alive(redis)).toBe(true);
      process.kill(worker, 'SIGKILL');
      await expect.poll(() => alive(redis), { timeout: 5000, interval: 50 }).toBe(false);
    },
  );
});

const FIXTURES = fileURLToPath(new URL('./fixtures/orphan', import.meta.url));
const VITEST = fileURLToPath(new URL('../../../../node_modules/vitest/vitest.mjs', import.meta.url));

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {}
}
