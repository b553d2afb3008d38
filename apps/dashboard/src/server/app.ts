import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  createATPWebSocketServer,
  type Logger,
  MemoryBroker,
  type MemoryBrokerOptions,
} from '@atp/ws-server';
import { RedisBroker } from '@atp/ws-redis';
import { createATPRouter } from '@atp/ws-server/express';
import express, { type Express } from 'express';
import { type DashboardConfig, loadConfig } from './config.js';
import { ExecutionStore, SUITE_EXECUTION, type SuiteExecutionRecord } from './executions.js';
import { createExecutionsRouter } from './executions-router.js';
import { createStaticRouter } from './static-router.js';
import { silentLogger } from './logger.js';
import { SimulatedRunner, type SimulatedRunnerOptions } from './runner.js';

/** Options of {@link createDashboardServer}. */
export interface DashboardServerOptions {
  /** Overrides `PORT` (0 = any free port). */
  port?: number;
  /** Overrides `HOST`. */
  host?: string;
  /** The environment to read the configuration from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Extra options of the simulated runner (speed, seed, …) when `ATP_DEMO` leaves it on. */
  runner?: Partial<Omit<SimulatedRunnerOptions, 'publish' | 'store'>>;
  /** @default silent */
  logger?: Logger;
  /** Directory of the static pages served as they are (`plain.html`). @default the app's `public/` */
  publicDir?: string;
  /** Directory of the built React page, served at `/`. @default the app's `dist/ui/` (`vite build`) */
  uiDir?: string;
  /** Extra options of the hub (limits, buffers); tests use small ones. */
  hub?: Omit<ATPWebSocketServerOptions, 'server' | 'broker' | 'logger'>;
  /** Options of the memory broker (how much history it keeps), when Redis is not configured. */
  memoryBroker?: MemoryBrokerOptions;
}

/** A running dashboard server. */
export interface DashboardServer {
  readonly app: Express;
  readonly server: Server;
  readonly hub: ATPWebSocketServer;
  readonly store: ExecutionStore;
  /** The simulated runner, or `undefined` with `ATP_DEMO=0`. */
  readonly runner: SimulatedRunner | undefined;
  readonly config: DashboardConfig;
  /** The port it listens on. */
  readonly port: number;
  /** The URL to open in a browser. */
  readonly url: string;
  /** Stops the runner, closes every WebSocket client with 1001, then the HTTP server. */
  close(): Promise<void>;
}

// Both from src/server/app.ts (tests) and from dist/server/main.js (pnpm start).
const DEFAULT_PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));
const DEFAULT_UI_DIR = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

/**
 * Starts the example dashboard: an Express 5 app and HTTP server with the
 * hub attached, the REST routes of `@atp/ws-server/express`, the executions
 * API and (unless `ATP_DEMO=0`) the simulated ATP runner publishing through the hub.
 *
 * @example
 * const dashboard = await createDashboardServer({ port: 0, env: { ATP_WS_ADMIN_TOKEN: 'secret' } });
 * console.log(dashboard.url);
 * await dashboard.close();
 */
export async function createDashboardServer(options: DashboardServerOptions = {}): Promise<DashboardServer> {
  const loaded = loadConfig(options.env ?? process.env);
  const config: DashboardConfig = {
    ...loaded,
    port: options.port ?? loaded.port,
    host: options.host ?? loaded.host,
  };
  const logger = options.logger ?? silentLogger;
  const app = express();
  app.disable('x-powered-by');
  const server = createServer(app);
  // ATP_WS_REDIS_URL (or _SENTINELS / _CLUSTER): several processes behind a load balancer share one
  // Redis and behave as one.
  const password = config.redisPassword === undefined ? {} : { password: config.redisPassword };
  const broker = config.redisSentinel
    ? new RedisBroker({
        sentinel: { ...config.redisSentinel, ...password },
        prefix: config.redisPrefix,
        logger,
      })
    : config.redisCluster
      ? new RedisBroker({
          cluster: { ...config.redisCluster, ...password },
          prefix: config.redisPrefix,
          logger,
        })
      : config.redisUrl === undefined
        ? options.memoryBroker && new MemoryBroker(options.memoryBroker)
        : new RedisBroker({ url: config.redisUrl, prefix: config.redisPrefix, logger });
  const hub = createATPWebSocketServer({ ...options.hub, server, logger, ...(broker ? { broker } : {}) });
  // The state of every execution follows the stream the hub delivers (from every process, with Redis),
  // so that a snapshot holds every message up to the position the hub gives it, and none after. From
  // the history's start: a process started while others were publishing holds what they hold.
  const store = new ExecutionStore();
  hub.resources.follow((messages) => store.apply(messages), { from: 'start' });
  hub.resources.register<SuiteExecutionRecord>(SUITE_EXECUTION, (id) => {
    const record = /^\d{1,15}$/.test(id) ? store.get(Number(id)) : undefined;
    return record?.type === 'suite_execution' ? { data: record, version: record.sequence } : undefined;
  });
  app.use(createATPRouter(hub, { adminToken: config.adminToken, publishToken: config.publishToken }));
  app.use(createExecutionsRouter(store));
  app.use(createStaticRouter(options.uiDir ?? DEFAULT_UI_DIR, options.publicDir ?? DEFAULT_PUBLIC_DIR));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await hub.ready;
  } catch (error) {
    await hub.close().catch(() => {});
    await broker?.close();
    server.close();
    throw error;
  }

  const runner = config.demo
    ? new SimulatedRunner({
        speed: config.demoSpeed,
        logger,
        ...options.runner,
        publish: (messages) => hub.publish(messages),
      })
    : undefined;
  runner?.start();

  const port = (server.address() as AddressInfo).port;
  const browserHost = ['0.0.0.0', '::', ''].includes(config.host) ? 'localhost' : config.host;
  const url = `http://${browserHost.includes(':') ? `[${browserHost}]` : browserHost}:${port}`;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await runner?.stop();
      await hub.close();
      await broker?.close();
      await new Promise<void>((resolve) => {
        // Idle keep-alive sockets are closed at once; requests in flight get a moment to finish.
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    })();
    return closing;
  };
  return { app, server, hub, store, runner, config, port, url, close };
}
