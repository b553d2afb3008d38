// A hub in a child process of its own, driven over IPC by the reliability tests, so that its memory
// and event-loop delay are measured apart from the thousands of clients of the test process, and so
// that a restart is a real process restart. Imports the built packages, as a user's server would.
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

const commands = {
  async start({ port = 0, hubOptions = {}, brokerOptions }) {
    if (brokerOptions?.kind === 'redis') {
      const { kind: _kind, ...options } = brokerOptions;
      broker = new RedisBroker(options);
    } else {
      const { kind: _kind, ...options } = brokerOptions ?? {};
      broker = new MemoryBroker(options);
    }
    hub = createATPWebSocketServer({ ...hubOptions, port, broker });
    await hub.ready;
    return { port: hub.address()?.port, serverId: hub.serverId, pid: process.pid };
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
