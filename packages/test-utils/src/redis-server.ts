import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRedisServer, missingMessage } from './prerequisites.mjs';

export interface RedisServerOptions {
  /** Port on 127.0.0.1. Default: a free one (never 6379). */
  port?: number;
  /** 'sentinel' runs `redis-server <own sentinel.conf> --sentinel`. Default 'server'. */
  mode?: 'server' | 'sentinel';
  /** More `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`; they come last and win. */
  args?: readonly string[];
  /** How long `start()` waits for the server to answer. Default 10 s. */
  startTimeoutMs?: number;
}

/** The port a developer's own Redis most likely listens on; never picked for a test server. */
const DEFAULT_REDIS_PORT = 6379;

/**
 * Every redis-server started by this process and still running, with its folder: killed, and the
 * folder removed, when the process exits.
 */
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function track(child: ChildProcess, dir: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const [child, dir] of running) {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
  running.set(child, dir);
  child.once('exit', () => running.delete(child));
}

/**
 * On Linux, util-linux's `setpriv --pdeathsig KILL` makes the kernel kill the server when the
 * process that started it dies, even by SIGKILL (when no exit handler runs).
 */
const SETPRIV =
  process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;

/** A free TCP port on 127.0.0.1 (other than 6379), as the kernel hands out for port 0. */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (typeof address === 'object' && address !== null && address.port !== DEFAULT_REDIS_PORT) {
      return address.port;
    }
  }
}

/** A RESP2 reply: simple or bulk string, integer, nil, array, or an error reply. */
export type RedisReply = string | number | null | RedisReply[] | RedisError;

/** An error reply (`-ERR …`) of the server. */
export class RedisError extends Error {
  override name = 'RedisError';
}

/** Parses one reply at `at`; undefined when `buffer` does not hold all of it yet. */
function parseReply(buffer: Buffer, at: number): [RedisReply, number] | undefined {
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd < 0) return undefined;
  const line = buffer.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (String.fromCharCode(buffer[at] ?? 0)) {
    case '+':
      return [line, next];
    case '-':
      return [new RedisError(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const length = Number(line);
      if (length < 0) return [null, next];
      if (buffer.length < next + length + 2) return undefined;
      return [buffer.toString('utf8', next, next + length), next + length + 2];
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return [null, next];
      const items: RedisReply[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, position);
        if (!item) return undefined;
        items.push(item[0]);
        position = item[1];
      }
      return [items, position];
    }
    default:
      throw new Error(`not a Redis reply: ${JSON.stringify(buffer.toString('utf8', at, at + 40))}`);
  }
}

/**
 * Sends one command to the Redis on 127.0.0.1:`port` over a connection of its own and resolves
 * with the reply (an error reply resolves as a {@link RedisError}); rejects when nothing answers.
 * For the few commands a test of a test server needs, without a client library.
 */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 2000): Promise<RedisReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    const finish = (error: Error | undefined, reply?: RedisReply) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply ?? null);
    };
    const timer = setTimeout(
      () => finish(new Error(`no reply from port ${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('connect', () => {
      const parts = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join('')}`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        const parsed = parseReply(buffer, 0);
        if (parsed) finish(undefined, parsed[0]);
      } catch (error) {
        finish(error as Error);
      }
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error(`port ${port} closed the connection without a reply`)));
  });
}

/** `process_id` from `INFO server` of whatever answers on `port`, or undefined when nothing does yet. */
async function redisProcessId(port: number): Promise<number | undefined> {
  const reply = await redisCommand(port, ['INFO', 'server'], 1000).catch(() => undefined);
  const match = typeof reply === 'string' ? /process_id:(\d+)/.exec(reply) : null;
  return match ? Number(match[1]) : undefined;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A `redis-server` of the tests' own on 127.0.0.1 and a free port, without persistence
 * (`--save "" --appendonly no`, files in a temporary folder of its own). It is killed when the
 * process that started it exits, however it exits.
 *
 * @example
 * const redis = await RedisServer.start();
 * disposer.add(() => redis.stop());
 * new RedisBroker({ url: redis.url });
 * await redis.kill();    // an outage
 * await redis.start();   // back on the same port, empty
 */
export class RedisServer {
  readonly #options: RedisServerOptions;
  #port: number;
  #child: ChildProcess | undefined;
  #alive = false;
  #dir: string | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(port: number, options: RedisServerOptions) {
    this.#port = port;
    this.#options = options;
  }

  /** Starts a server; see {@link RedisServerOptions}. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const fixed = options.port !== undefined;
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(options.port ?? (await freePort()), options);
      try {
        await server.start();
        return server;
      } catch (error) {
        // Someone took the free port between our look and redis-server's bind: try another one.
        const taken = error instanceof Error && /Address already in use/.test(error.message);
        if (fixed || !taken || attempt >= 5) throw error;
      }
    }
  }

  get port(): number {
    return this.#port;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  /** The server's working folder (temporary, its own) while it runs. */
  get dir(): string | undefined {
    return this.#alive ? this.#dir : undefined;
  }

  /** The server's process id while it runs. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#alive;
  }

  /**
   * Starts the server (again) on its port and resolves once it answers as the process started
   * here. Nothing is kept from an earlier run. Does nothing when it runs already.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const command = findRedisServer();
    if (!command) throw new Error(missingMessage(['redis-server']));
    const dir = mkdtempSync(join(tmpdir(), 'atp-test-redis-'));
    this.#dir = dir;
    const args: string[] = [];
    if (this.#options.mode === 'sentinel') {
      const config = join(dir, 'sentinel.conf'); // Sentinel rewrites its config file: one of its own
      writeFileSync(config, '');
      args.push(config, '--sentinel');
    }
    args.push(
      ...['--port', String(this.#port), '--bind', '127.0.0.1', '--dir', dir],
      ...['--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'],
      ...(this.#options.args ?? []),
    );
    const child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child, dir);
    this.#child = child;
    this.#alive = true;
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let spawnError: Error | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (error) => {
        spawnError = error;
        resolve();
      });
      child.once('close', () => resolve());
    }).then(() => {
      this.#alive = false;
      rmSync(dir, { recursive: true, force: true });
    });
    child.once('exit', () => {
      this.#alive = false;
    });

    const deadline = Date.now() + (this.#options.startTimeoutMs ?? 10_000);
    for (;;) {
      if (!this.#alive || spawnError) {
        await this.#exited;
        const why = spawnError?.message ?? output.trim().split('\n').slice(-3).join(' | ');
        throw new Error(`redis-server on port ${this.#port} exited at start: ${why}`);
      }
      // Only the server started here counts: its process id must be ours.
      if ((await redisProcessId(this.#port)) === child.pid) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server did not answer on port ${this.#port} within the start timeout`);
      }
      await delay(20);
    }
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and resolves once it exited. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || !this.#alive) return this.#exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Kills the server at once (SIGKILL), as a crash would, and resolves once it exited. */
  async kill(): Promise<void> {
    if (this.#alive) this.#child?.kill('SIGKILL');
    await this.#exited;
  }

  /** Stops the server and starts it again on the same port, empty. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
