import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Disposer, RawTestClient } from '@atp/test-utils';
import type { DataMessage, ReplayFrom } from '@atp/ws-protocol';
import express from 'express';
import { afterEach } from 'vitest';
import { type ATPRouterOptions, createATPRouter } from '../express.js';
import {
  type ATPWebSocketServer,
  type ATPWebSocketServerOptions,
  type Broker,
  BrokerUnavailableError,
  createATPWebSocketServer,
  MemoryBroker,
} from '../index.js';

export const disposer = new Disposer();
afterEach(() => disposer.run());

export interface App {
  hub: ATPWebSocketServer;
  server: Server;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** `ws://127.0.0.1:<port>/api/ws/updates` */
  wsUrl: string;
}

/** An Express app on port 0 with the hub attached and the router mounted; closed after the test. */
export async function startApp(
  routerOptions: ATPRouterOptions = {},
  hubOptions: ATPWebSocketServerOptions = {},
): Promise<App> {
  const app = express();
  const server = createServer(app);
  const hub = createATPWebSocketServer({ server, ...hubOptions });
  app.use(createATPRouter(hub, routerOptions));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  disposer.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  disposer.add(() => hub.close());
  await hub.ready;
  const { port } = server.address() as AddressInfo;
  return { hub, server, base: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/api/ws/updates` };
}

/** A raw WebSocket client, connected (after `connected`) and closed after the test. */
export async function connect(wsUrl: string, query = ''): Promise<RawTestClient> {
  const client = await RawTestClient.connect(query ? `${wsUrl}?${query}` : wsUrl);
  disposer.add(() => client.close());
  return client;
}

/** POSTs a JSON body (or a raw string) to the publish endpoint. */
export function publish(
  base: string,
  body: unknown,
  options: { token?: string; contentType?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/json' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  return fetch(`${base}/api/ws/publish`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export { progress } from '@atp/test-utils';

/** A broker that can be switched off, to see what the router answers when publishing fails. */
export class SwitchableBroker implements Broker {
  available = true;
  readonly #inner = new MemoryBroker();

  publish(messages: readonly DataMessage[]): Promise<void> {
    if (!this.available) {
      return Promise.reject(new BrokerUnavailableError('broker is unreachable'));
    }
    return this.#inner.publish(messages);
  }

  subscribe(...args: Parameters<Broker['subscribe']>): ReturnType<Broker['subscribe']> {
    return this.#inner.subscribe(...args);
  }

  read(from: ReplayFrom): ReturnType<Broker['read']> {
    return this.#inner.read(from);
  }

  position(): ReturnType<Broker['position']> {
    return this.#inner.position();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
