// One benchmark target in its own process: our hub (in-process publish or
// POST /api/ws/publish, memory or Redis broker), a bare `ws` broadcast server
// that serializes once (the floor), or Socket.IO with rooms. It publishes the
// scenario's messages itself, paced by credits the orchestrator relays from
// the load generator, and reports its own CPU time and memory over IPC.
import { createServer } from 'node:http';
import { keyOfSubscription, keysOfMessage, messageFor, nowMicros } from './scenario.mjs';

const PUBLISH_TOKEN = 'bench-publish-token';
let target;
let publishOne;
let credit = 0;
let creditWaiter;
let phaseCpu;
let closeTarget = async () => {};

function send(message) {
  process.send?.(message);
}

const immediate = () => new Promise((resolve) => setImmediate(resolve));

process.on('message', (message) => {
  switch (message.cmd) {
    case 'start':
      start(message).then(
        (port) => send({ type: 'ready', port }),
        (error) => send({ type: 'failed', error: String(error?.stack ?? error) }),
      );
      break;
    case 'credit':
      credit = Math.max(credit, message.through);
      creditWaiter?.();
      break;
    case 'phase':
      if (message.measure && process.env.BENCH_PROFILE_DIR) startProfile();
      phaseCpu = process.cpuUsage();
      void runPhase(message).then((published) => send({ type: 'published', published }));
      break;
    case 'finish': {
      const cpu = process.cpuUsage(phaseCpu);
      void stopProfile().then(() =>
        send({ type: 'finished', cpuMs: (cpu.user + cpu.system) / 1000, userMs: cpu.user / 1000 }),
      );
      break;
    }
    case 'heap-snapshot':
      void import('node:v8').then((v8) => {
        globalThis.gc?.();
        send({ type: 'heap-snapshot', file: v8.writeHeapSnapshot(message.file) });
      });
      break;
    case 'memory':
      void memory().then((m) => send({ type: 'memory', ...m }));
      break;
    case 'exit':
      void closeTarget().finally(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
      break;
  }
});

// --profile: a CPU profile of the measured phase only (not of start-up and connecting).
let profiler;

function startProfile() {
  profiler = import('node:inspector').then(({ Session }) => {
    const session = new Session();
    session.connect();
    return new Promise((resolve) =>
      session.post('Profiler.setSamplingInterval', { interval: 100 }, () =>
        session.post('Profiler.enable', () => session.post('Profiler.start', () => resolve(session))),
      ),
    );
  });
}

async function stopProfile() {
  if (!profiler) return;
  const session = await profiler;
  profiler = undefined;
  const { profile } = await new Promise((resolve, reject) =>
    session.post('Profiler.stop', (error, result) => (error ? reject(error) : resolve(result))),
  );
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const dir = process.env.BENCH_PROFILE_DIR;
  mkdirSync(dir, { recursive: true });
  const file = `${dir}/${process.env.BENCH_PROFILE_NAME ?? target}-${process.pid}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
}

async function memory() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

function waitForCredit() {
  return new Promise((resolve) => {
    creditWaiter = () => {
      creditWaiter = undefined;
      resolve();
    };
  });
}

/**
 * Publishes messages [from, from + count): `burst` of them in one tick, while
 * at most `window` are not yet received by everyone; or `rate` per second.
 */
async function runPhase({ from, count, window, burst = 1, rate, kind, suites }) {
  const end = from + count;
  let next = from;
  if (rate) {
    const started = performance.now();
    const interval = 1000 / rate;
    while (next < end) {
      const due = started + (next - from) * interval;
      const wait = due - performance.now();
      // Each message in a tick of its own, even when late: a late timer must not turn into a burst.
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else await immediate();
      publishOne(messageFor(kind, next, nowMicros(), suites));
      next += 1;
    }
    return count;
  }
  while (next < end) {
    const inFlight = next - 1 - credit;
    const n = Math.min(burst, end - next);
    if (window - inFlight < n) {
      await waitForCredit();
      continue;
    }
    for (let k = 0; k < n; k++) {
      publishOne(messageFor(kind, next, nowMicros(), suites));
      next += 1;
    }
    // One tick per publish (or burst): the next one comes from a later turn of the event loop.
    await immediate();
  }
  return count;
}

async function start({ target: name, redisUrl, redisPrefix }) {
  target = name;
  if (name === 'floor') return startFloor();
  if (name === 'socketio') return startSocketIO();
  return startHub({ redisUrl, redisPrefix });
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** The floor: one JSON.stringify and one Buffer per message, ws.send to each socket of the rooms. */
async function startFloor() {
  const { WebSocketServer } = await import('ws');
  const server = createServer();
  const wss = new WebSocketServer({ server, path: '/api/ws/updates', perMessageDeflate: false });
  const rooms = new Map();
  const text = { binary: false };
  wss.on('connection', (ws) => {
    const joined = [];
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type !== 'subscribe') return;
      const key = keyOfSubscription(message.payload);
      let room = rooms.get(key);
      if (!room) {
        room = new Set();
        rooms.set(key, room);
      }
      room.add(ws);
      joined.push(room);
      ws.send(JSON.stringify({ type: 'subscribed', id: message.id }));
    });
    ws.on('close', () => {
      for (const room of joined) room.delete(ws);
    });
  });
  publishOne = (message) => {
    const frame = Buffer.from(JSON.stringify(message));
    for (const key of keysOfMessage(message)) {
      const room = rooms.get(key);
      if (room) for (const ws of room) ws.send(frame, text);
    }
  };
  closeTarget = async () => {
    for (const ws of wss.clients) ws.terminate();
    server.close();
  };
  return listen(server);
}

/** Socket.IO 4.8 with rooms, WebSocket transport only; `io.to(rooms).emit` serializes once per broadcast. */
async function startSocketIO() {
  const { Server } = await import('socket.io');
  const server = createServer();
  const io = new Server(server, { transports: ['websocket'], serveClient: false });
  io.on('connection', (socket) => {
    socket.on('subscribe', (rooms) => {
      socket.join(rooms);
      socket.emit('subscribed', {});
    });
  });
  publishOne = (message) => {
    io.to(keysOfMessage(message)).emit(message.type, message.payload);
  };
  closeTarget = async () => {
    io.close();
  };
  return listen(server);
}

/** Our hub, attached to an Express app that also serves POST /api/ws/publish. */
async function startHub({ redisUrl, redisPrefix }) {
  const { createATPWebSocketServer } = await import('@atp/ws-server');
  const { createATPRouter } = await import('@atp/ws-server/express');
  const { default: express } = await import('express');
  let broker;
  if (redisUrl) {
    const { RedisBroker } = await import('@atp/ws-redis');
    broker = new RedisBroker({ url: redisUrl, prefix: redisPrefix });
  }
  const app = express();
  const server = createServer(app);
  const hub = createATPWebSocketServer({ server, ...(broker ? { broker } : {}) });
  app.use(createATPRouter(hub, { publishToken: PUBLISH_TOKEN, clientScript: false }));
  const port = await listen(server);
  await hub.ready;
  let failures = 0;
  publishOne = (message) => {
    hub.publish(message).catch((error) => {
      if (failures++ === 0) console.error('publish failed:', error);
    });
  };
  closeTarget = async () => {
    await hub.close();
    await broker?.close();
    server.close();
  };
  return port;
}

send({ type: 'started' });
