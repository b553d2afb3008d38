import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server,
  type Socket,
} from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromiumExecutable, type Disposer, withTimeout } from '@atp/test-utils';
import { type Browser, chromium, type Page } from 'playwright-core';
import {
  createDashboardServer,
  type DashboardServer,
  type DashboardServerOptions,
} from '../src/server/app.js';

const UI_INDEX = fileURLToPath(new URL('../dist/ui/index.html', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/server/main.js', import.meta.url));
/** Screenshots of every case, for a person to look at (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

/** How much faster than real time the simulated runner goes in these tests: a test in about a second. */
export const SPEED = 25;

/** Fails (never skips) when what the browser tests need is missing, saying how to get it. */
export function checkPrerequisites(): void {
  chromiumExecutable(); // throws, saying what to install, when there is no browser
  for (const file of [UI_INDEX, MAIN]) {
    if (!existsSync(file)) {
      throw new Error(
        `${file} is missing: run \`pnpm --filter @atp/dashboard build\` first (\`pnpm test\` builds it)`,
      );
    }
  }
  mkdirSync(ARTIFACTS, { recursive: true });
}

/** Headless Chromium (CHROMIUM_PATH, else one found on PATH) with a fresh profile of its own. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A new page of 1440×960 whose uncaught errors are collected (a test expects none). */
export async function openPage(
  browser: Browser,
  disposer: Disposer,
  options: { colorScheme?: 'light' | 'dark'; width?: number; height?: number } = {},
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1440, height: options.height ?? 960 },
    colorScheme: options.colorScheme ?? 'light',
  });
  disposer.add(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  return { page, errors };
}

/** The dashboard server in this process, on a free port, with a fast simulated runner. */
export async function startDashboard(
  disposer: Disposer,
  runner: DashboardServerOptions['runner'] = {},
  port = 0,
  options: Omit<DashboardServerOptions, 'runner' | 'port' | 'host'> = {},
): Promise<DashboardServer> {
  const dashboard = await createDashboardServer({
    port,
    host: '127.0.0.1',
    env: {},
    ...options,
    runner: { speed: SPEED, seed: 11, suiteIntervalMs: [4000, 8000], ...runner },
  });
  disposer.add(() => dashboard.close());
  return dashboard;
}

/** `dist/server/main.js` (what `pnpm start` runs) as a child process that a test can kill -9. */
export interface DashboardProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  kill(): Promise<void>;
}

/** Starts `dist/server/main.js` on `port` (0: any) and resolves once it printed its URL. */
export async function spawnDashboard(disposer: Disposer, port = 0): Promise<DashboardProcess> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(ATP_|PORT$|HOST$)/.test(key)),
  );
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ATP_DEMO_SPEED: String(SPEED),
      ATP_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  disposer.add(kill);
  let output = '';
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const check = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /open\s+(http:\/\/\S+?)\/?\n/.exec(output);
        if (match) resolve(match[1]!);
      };
      child.stdout?.on('data', check);
      child.stderr?.on('data', check);
      child.once('exit', (code) => reject(new Error(`dist/server/main.js exited with ${code}:\n${output}`)));
    }),
    10_000,
    'the dashboard process to print its URL',
  );
  return { child, url, port: Number(new URL(url).port), kill };
}

/** Numbers shown in the page, read through the DOM. */
export const read = {
  /** The count on a filter chip (`All`, `tool_call`, `info`, …) of a panel. */
  chipCount(page: Page, panel: 'events' | 'logs', filter: string): Promise<number> {
    return page
      .locator(`[aria-labelledby="${panel}-title"] [data-filter="${filter}"] .chip-count`)
      .textContent()
      .then((text) => Number((text ?? '').replaceAll(',', '')));
  },
  /** The connection indicator's state. */
  connection(page: Page): Promise<string | null> {
    return page.getByTestId('connection').getAttribute('data-state');
  },
};

/** Calls `probe` until it returns a value other than `undefined`, and returns that value. */
export async function waitForValue<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** `GET` a JSON document of the dashboard's REST API. */
export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as T;
}

/**
 * A TCP proxy between the browser and the dashboard, for the network faults a test needs: a
 * consumer that stops reading (`pause`), and a network outage (`cut`, then `restore`).
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #down = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(disposer: Disposer, targetPort: number): Promise<TcpProxy> {
    const server = createNetServer();
    const proxy = new TcpProxy(server);
    server.on('connection', (client) => proxy.#accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    disposer.add(() => proxy.close());
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Stops reading what the server sends on every open connection: the browser becomes a slow consumer. */
  pause(): void {
    for (const { upstream } of this.#pairs) upstream.pause();
  }

  resume(): void {
    for (const { upstream } of this.#pairs) upstream.resume();
  }

  /** A network outage: every connection is dropped and new ones are refused until `restore()`. */
  cut(): void {
    this.#down = true;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  restore(): void {
    this.#down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket, targetPort: number): void {
    if (this.#down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
