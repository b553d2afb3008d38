import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DataMessage } from '@atp/ws-protocol';
import type { ATPWebSocketServerOptions, ClientInfo, MemoryBrokerOptions } from '@atp/ws-server';

const SCRIPT = fileURLToPath(new URL('./server-process.mjs', import.meta.url));

/** JSON-safe hub options (no hooks: those cannot cross the process boundary). */
export type ChildHubOptions = Omit<
  ATPWebSocketServerOptions,
  'server' | 'broker' | 'authenticate' | 'authorizeSubscription' | 'logger' | 'allowedOrigins' | 'port'
> & { allowedOrigins?: string[] };

/** Which broker the child uses. */
export type ChildBrokerOptions =
  | ({ kind: 'memory' } & Omit<MemoryBrokerOptions, 'now'>)
  | {
      kind: 'redis';
      url: string;
      prefix: string;
      blockMs?: number;
      presenceTtlMs?: number;
      maxMessages?: number;
    };

/** What `stats` reports, memory measured after two forced GCs. */
export interface ChildStats {
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  connections: number;
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/**
 * A hub running in a child process (with `--expose-gc`), driven over IPC.
 * Records anything the child reports as unhandled, and whether it died.
 */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly unhandled: string[] = [];
  port = 0;
  serverId = '';
  #next = 0;
  #pending = new Map<number, Pending>();
  #exited: Promise<number | null>;
  #exitCode: number | null | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.#exitCode = code;
        for (const pending of this.#pending.values())
          pending.reject(new Error(`server process exited (${code})`));
        this.#pending.clear();
        resolve(code);
      });
    });
    child.on(
      'message',
      (message: {
        id?: number;
        ok?: boolean;
        result?: unknown;
        error?: string;
        event?: string;
        detail?: string;
      }) => {
        if (message.event === 'unhandledRejection' || message.event === 'uncaughtException') {
          this.unhandled.push(`${message.event}: ${message.detail}`);
          return;
        }
        if (message.id === undefined) return;
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(`server process: ${message.error}`));
      },
    );
  }

  /** Forks the child and starts a hub in it on `port` (0 = any free port). */
  static async start(
    options: {
      port?: number;
      hubOptions?: ChildHubOptions;
      brokerOptions?: ChildBrokerOptions;
      /** Serve the Express router too (POST /api/ws/publish with this bearer token). */
      rest?: { publishToken: string };
      /** False: answer before the hub is ready (see {@link ServerProcess.ready}). Default true. */
      awaitReady?: boolean;
    } = {},
  ): Promise<ServerProcess> {
    const child = fork(SCRIPT, [], {
      execArgv: [
        '--expose-gc',
        ...(process.env.ATP_CHILD_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    const server = new ServerProcess(child);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.on('message', (message: { event?: string }) => message.event === 'ready' && resolve());
    });
    const started = (await server.request('start', options)) as { port: number; serverId: string };
    server.port = started.port;
    server.serverId = started.serverId;
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/api/ws/updates`;
  }

  /** True while the child runs. */
  get alive(): boolean {
    return this.#exitCode === undefined;
  }

  request(cmd: string, args?: unknown): Promise<unknown> {
    if (!this.alive) return Promise.reject(new Error('server process is not running'));
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, args });
    });
  }

  /** Waits up to `timeoutMs` for the hub's `ready`; resolves whether it became ready (and why not). */
  ready(timeoutMs = 10_000): Promise<{ ready: boolean; error?: string }> {
    return this.request('ready', { timeoutMs }) as Promise<{ ready: boolean; error?: string }>;
  }

  publish(messages: DataMessage[]): Promise<{ accepted: number }> {
    return this.request('publish', { messages }) as Promise<{ accepted: number }>;
  }

  stats(options: { gc?: boolean; resetDelay?: boolean } = {}): Promise<ChildStats> {
    return this.request('stats', options) as Promise<ChildStats>;
  }

  clients(): Promise<ClientInfo[]> {
    return this.request('clients') as Promise<ClientInfo[]>;
  }

  metrics(): Promise<string> {
    return this.request('metrics') as Promise<string>;
  }

  /** Closes the hub gracefully (1001 to every client), then ends the process. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    await this.request('close').catch(() => {});
    this.child.disconnect();
    await this.#exited;
  }

  /** Ends the process at once, as a crash would. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    await this.#exited;
  }

  /** The child's exit code once it ended (undefined while it runs). */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }
}
