// A hub in a child process of its own, driven over IPC by the reliability tests, so that its memory
// and event-loop delay are measured apart from the thousands of clients of the test process, and so
// that a restart is a real process restart. Imports the built packages, as a user's server would.
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RedisBroker } from '@atp/ws-redis';
import { createATPWebSocketServer, MemoryBroker } from '@atp/ws-server';

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

/** @type {import('@atp/ws-server').ATPWebSocketServer | undefined} */
let hub;
/** @type {import('@atp/ws-server').Broker | undefined} */
let broker;

const send = (message) => process.send?.(message);

process.on('unhandledRejection', (reason) => {
  send({ event: 'unhandledRejection', detail: String(reason?.stack ?? reason) });
});
process.on('uncaughtException', (error) => {
  send({ event: 'uncaughtException', detail: String(error?.stack ?? error) });
  process.exit(70);
});
process.on('disconnect', () => process.exit(0));

function memory() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

const ms = (ns) => Math.round((ns / 1e6) * 100) / 100;

/**
 * An HTTP server with the Express routers of `@atp/ws-server/express` (POST /api/ws/publish, and the SSE
 * fallback's stream and POSTs), listening on `port`.
 */
async function restServer(port, publishToken) {
  // express is a peer dependency of @atp/ws-server: resolve it from there.
  const require = createRequire(import.meta.resolve('@atp/ws-server'));
  const express = require('express');
  const { createATPFallbackRouter, createATPRouter } = await import('@atp/ws-server/express');
  const { createServer } = await import('node:http');
  const app = express();
  const server = createServer(app);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const mount = (h) => {
    app.use(createATPRouter(h, { publishToken, clientScript: false }));
    // The SSE fallback, for clients whose WebSocket is blocked.
    app.use(createATPFallbackRouter(h));
  };
  return { app, server, mount };
}

const commands = {
  /**
   * Starts the hub. With `rest: { publishToken }` it is attached to an HTTP server that also serves
   * the Express router (POST /api/ws/publish). With `awaitReady: false` it answers before the hub is
   * ready (a broker that cannot be reached yet); the `ready` command waits for it.
   */
  async start({ port = 0, hubOptions = {}, brokerOptions, rest, awaitReady = true }) {
    if (brokerOptions?.kind === 'redis') {
      const { kind: _kind, ...options } = brokerOptions;
      broker = new RedisBroker(options);
    } else {
      const { kind: _kind, ...options } = brokerOptions ?? {};
      broker = new MemoryBroker(options);
    }
    if (rest) {
      const http = await restServer(port, rest.publishToken);
      hub = createATPWebSocketServer({ ...hubOptions, server: http.server, broker });
      http.mount(hub);
    } else {
      hub = createATPWebSocketServer({ ...hubOptions, port, broker });
    }
    if (awaitReady) await hub.ready;
    else hub.ready.catch(() => {});
    return { port: hub.address()?.port ?? port, serverId: hub.serverId, pid: process.pid };
  },
  /** Waits up to `timeoutMs` for the hub to be ready; answers whether it is. */
  async ready({ timeoutMs = 10_000 }) {
    if (!hub) return { ready: false, error: 'no hub' };
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(
        () => resolve({ ready: false, error: `not ready after ${timeoutMs} ms` }),
        timeoutMs,
      );
    });
    const ready = hub.ready.then(
      () => ({ ready: true }),
      (error) => ({ ready: false, error: String(error?.message ?? error) }),
    );
    const result = await Promise.race([ready, timeout]);
    clearTimeout(timer);
    return result;
  },
  async publish({ messages }) {
    await hub.publish(messages);
    return { accepted: messages.length };
  },
  async stats({ gc = true, resetDelay = false } = {}) {
    const result = {
      memory: gc ? memory() : process.memoryUsage(),
      eventLoopDelayMs: {
        p50: ms(delay.percentile(50)),
        p99: ms(delay.percentile(99)),
        max: ms(delay.max),
        mean: ms(delay.mean),
      },
      connections: hub ? (await hub.clients()).filter((c) => c.server_id === hub.serverId).length : 0,
    };
    if (resetDelay) delay.reset();
    return result;
  },
  async clients() {
    return hub ? hub.clients() : [];
  },
  async metrics() {
    return hub ? hub.metrics() : '';
  },
  /** For diagnosis: a heap snapshot (after GC) written to `dir`. */
  async heapSnapshot({ dir }) {
    const { writeHeapSnapshot } = await import('node:v8');
    memory();
    return { path: writeHeapSnapshot(`${dir}/server-${process.pid}-${Date.now()}.heapsnapshot`) };
  },
  async close() {
    await hub?.close();
    await broker?.close();
    return {};
  },
};

process.on('message', async ({ id, cmd, args }) => {
  try {
    const result = await commands[cmd](args ?? {});
    send({ id, ok: true, result });
  } catch (error) {
    send({ id, ok: false, error: String(error?.message ?? error), name: error?.name });
  }
});

send({ event: 'ready' });
