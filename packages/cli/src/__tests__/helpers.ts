import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Disposer } from '@atp/test-utils';
import type { DataMessage } from '@atp/ws-protocol';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
  MemoryBroker,
} from '@atp/ws-server';
import { createATPRouter } from '@atp/ws-server/express';
import express from 'express';
import { afterEach } from 'vitest';

export const disposer = new Disposer();
afterEach(() => disposer.run());

/** The built bin, as the package's `bin` field names it. */
export const BIN = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
export const PUBLISH_TOKEN = 'cli-test-publish-token';

/** A real hub (Express app, router with a publish token) on a loopback port that survives restarts. */
export class Hub {
  broker = new MemoryBroker();
  hub!: ATPWebSocketServer;
  #server: Server | undefined;
  port = 0;

  constructor(readonly options: ATPWebSocketServerOptions = {}) {}

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts it (on the same port as before after a stop); `newBroker` loses the history, as a restart would. */
  async start(newBroker = false): Promise<this> {
    if (newBroker) this.broker = new MemoryBroker();
    const app = express();
    const server = createServer(app);
    this.hub = createATPWebSocketServer({ server, broker: this.broker, ...this.options });
    app.use(createATPRouter(this.hub, { publishToken: PUBLISH_TOKEN }));
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    await this.hub.ready;
    return this;
  }

  /** Closes the hub (clients get 1001) and its HTTP server; the broker and its history stay. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await this.hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export async function startHub(options: ATPWebSocketServerOptions = {}): Promise<Hub> {
  const hub = await new Hub(options).start();
  disposer.add(() => hub.stop());
  return hub;
}

/** The built `atp-ws` in a process of its own, with its output gathered. */
export class Cli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
    });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Waits until `stream` matches `pattern`, failing with what was printed after `ms`. */
  async waitFor(stream: 'stdout' | 'stderr', pattern: RegExp | string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    const matches = () =>
      typeof pattern === 'string' ? this[stream].includes(pattern) : pattern.test(this[stream]);
    while (!matches()) {
      if (Date.now() > deadline) {
        throw new Error(
          `no ${String(pattern)} on ${stream} within ${ms} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The lines printed on stdout so far. */
  lines(): string[] {
    return this.stdout.split('\n').filter((line) => line !== '');
  }
}

/** Spawns `atp-ws <args>`; killed after the test if still running. */
export function run(args: string[], env: Record<string, string> = {}, stdin?: string): Cli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: 'pipe',
  });
  if (stdin === undefined) child.stdin.end();
  else child.stdin.end(stdin);
  const cli = new Cli(child);
  disposer.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return cli;
}

export { progress } from '@atp/test-utils';

export function log(suite: number, level: 'info' | 'error', message: string): DataMessage {
  return {
    type: 'log_entry',
    payload: { suite_execution_id: suite, level, message, timestamp: '2024-01-15T10:30:00Z' },
  };
}
