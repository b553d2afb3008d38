// One benchmark target in its own process: our hub (in-process publish or
// POST /api/ws/publish, memory or Redis broker), a bare `ws` broadcast server
// that serializes once (the floor), or Socket.IO with rooms. It publishes the
// scenario's messages itself, paced by credits the orchestrator relays from
// the load generator, and reports its own CPU time and memory over IPC.
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  keyOfSubscription,
  keysOfMessage,
  messageFor,
  nowMicros,
  RUN_MS_PER_MESSAGE,
  runMessage,
} from './scenario.mjs';

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
    case 'fill':
      fill(message).then(
        (filled) => send({ type: 'filled', ...filled }),
        (error) => send({ type: 'filled', error: String(error?.stack ?? error) }),
      );
      break;
    case 'live':
      void runLive(message);
      send({ type: 'live-started' });
      break;
    case 'live-stop':
      live.stop = true;
      void live.done.then((last) => send({ type: 'live-stopped', last }));
      break;
    case 'mark':
      // The start of a measured window of the replay scenarios: CPU and event-loop delay from here.
      if (message.profile && process.env.BENCH_PROFILE_DIR) startProfile();
      markCpu = process.cpuUsage();
      eventLoopDelay?.reset();
      send({ type: 'marked' });
      break;
    case 'measure': {
      const cpu = process.cpuUsage(markCpu);
      const delay = eventLoopDelay;
      const m = process.memoryUsage();
      void stopProfile().then(() =>
        send({
          type: 'measured',
          cpuMs: (cpu.user + cpu.system) / 1000,
          userMs: cpu.user / 1000,
          eventLoopDelayMs: delay
            ? { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6, mean: delay.mean / 1e6 }
            : undefined,
          rss: m.rss,
          heapUsed: m.heapUsed,
          history: historyBroker ? { messages: historyBroker.size, bytes: historyBroker.bytes } : undefined,
        }),
      );
      break;
    }
    case 'phase':
      if (message.measure && process.env.BENCH_PROFILE_DIR) startProfile();
      phaseCpu = process.cpuUsage();
      if (message.measure) gcStats?.reset();
      void runPhase(message).then((published) => send({ type: 'published', published }));
      break;
    case 'finish': {
      const cpu = process.cpuUsage(phaseCpu);
      gcStats?.report(target);
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

// BENCH_GC=1: counts and time of the garbage collections of the measured phase, on stderr.
const gcStats = process.env.BENCH_GC ? await gcCounter() : undefined;

async function gcCounter() {
  const { PerformanceObserver, constants } = await import('node:perf_hooks');
  const names = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-sweep',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
  };
  let stats = new Map();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const name = names[entry.detail?.kind] ?? String(entry.detail?.kind);
      const s = stats.get(name) ?? { count: 0, ms: 0 };
      s.count += 1;
      s.ms += entry.duration;
      stats.set(name, s);
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    reset: () => {
      stats = new Map();
    },
    report: (who) => {
      const parts = [...stats].map(([k, s]) => `${k} ${s.count}x ${s.ms.toFixed(0)} ms`);
      process.stderr.write(`  [gc ${who}] ${parts.join(', ')}\n`);
    },
  };
}

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

// ── replay scenarios: a run's history, live progress at a fixed rate, measured windows ──

/** The memory broker whose history the replay scenarios fill. */
let historyBroker;
/** How far behind real time the broker's clock is: the run's history is stamped as published over minutes. */
let clockLagMs = 0;
/** Event-loop delay of this process (replay scenarios only: sampling costs a little CPU). */
let eventLoopDelay;
let markCpu;
let live = { stop: false, done: Promise.resolve(0) };

/** Size of the frame a client gets for a message of `json.length` at `offset`, numbered `sequence`. */
function frameBytes(jsonLength, epochLength, offset, sequence) {
  // `{…` + `,"epoch":"` epoch `","offset":` offset `,"sequence":` sequence `}`
  const length =
    jsonLength - 1 + 10 + epochLength + 11 + String(offset).length + 12 + String(sequence).length + 1;
  return length + (length < 126 ? 2 : length < 65536 ? 4 : 10);
}

/**
 * Publishes the `count` messages of one suite run (in batches, as a runner's
 * reporter would), stamped by the broker's clock as if published one every
 * `RUN_MS_PER_MESSAGE` ms, so that its recent window (2 minutes / the newest
 * 10,000) keeps only the run's tail whole. Reports what the history keeps.
 */
async function fill({ count, batch = 100 }) {
  const started = performance.now();
  let publishedBytes = 0;
  let uncompactedFrameBytes = 0;
  const epochLength = historyBroker.epoch.length;
  for (let k = 0; k < count; k += batch) {
    const messages = [];
    for (let j = k; j < Math.min(count, k + batch); j++) {
      const message = runMessage(j);
      const length = JSON.stringify(message).length;
      publishedBytes += length;
      // What a replay of the whole run, uncompacted, would send (offset j + 1, numbered j + 1).
      uncompactedFrameBytes += frameBytes(length, epochLength, j + 1, j + 1);
      messages.push(message);
    }
    clockLagMs = (count - k - messages.length) * RUN_MS_PER_MESSAGE;
    await hubPublish(messages);
    if ((k / batch) % 10 === 9) await immediate();
  }
  clockLagMs = 0;
  const fillMs = performance.now() - started;
  // What the history keeps, by type, and what replaying all of it sends.
  const kept = {};
  let keptFrameBytes = 0;
  const read = await historyBroker.read('start');
  for (const [i, entry] of read.entries.entries()) {
    kept[entry.message.type] = (kept[entry.message.type] ?? 0) + 1;
    keptFrameBytes += frameBytes(entry.json.length, epochLength, entry.offset, i + 1);
  }
  globalThis.gc?.();
  const m = process.memoryUsage();
  return {
    fillMs,
    published: count,
    publishedBytes,
    keptMessages: historyBroker.size,
    keptBytes: historyBroker.bytes,
    keptByType: kept,
    firstKeptOffset: read.entries[0]?.offset,
    head: read.head,
    uncompactedFrameBytes,
    keptFrameBytes,
    rss: m.rss,
    heapUsed: m.heapUsed,
  };
}

let hubPublish;

/**
 * Publishes live progress at `rate` per second until told to stop. Unlike the
 * latency scenario's publisher, a late turn publishes every message due by
 * then, each stamped with the time it was due: messages from a runner would
 * wait in their sockets while this process's event loop is busy, so a stall
 * counts in the live clients' latency instead of thinning the traffic.
 */
async function runLive({ from, rate, kind }) {
  let resolveDone;
  live = { stop: false, done: new Promise((resolve) => (resolveDone = resolve)) };
  const startedUs = nowMicros();
  const intervalUs = 1e6 / rate;
  let next = from;
  while (!live.stop) {
    const dueUs = startedUs + (next - from) * intervalUs;
    const wait = (dueUs - nowMicros()) / 1000;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (live.stop) break;
    const now = nowMicros();
    do {
      publishOne(messageFor(kind, next, Math.round(startedUs + (next - from) * intervalUs)));
      next += 1;
    } while (startedUs + (next - from) * intervalUs <= now);
  }
  resolveDone(next - 1);
}

async function start({ target: name, redis, redisPrefix, history, eventLoopResolutionMs, track }) {
  target = name;
  if (eventLoopResolutionMs) {
    eventLoopDelay = monitorEventLoopDelay({ resolution: eventLoopResolutionMs });
    eventLoopDelay.enable();
  }
  if (name === 'floor') return startFloor();
  if (name === 'socketio') return startSocketIO();
  return startHub({ redis, redisPrefix, history, track });
}

/**
 * POST /api/ws/publish for the floor and Socket.IO (REST scenarios): the same
 * bearer token and bodies as the hub's, read whole, `JSON.parse`d, each message
 * routed by `publishOne`; answers 202 `{ accepted }` as the hub does. No
 * validation: the least a server that accepts published JSON does.
 */
function restPublisher(request, response) {
  if (request.method !== 'POST' || request.url !== '/api/ws/publish') {
    response.writeHead(404).end();
    return;
  }
  if (request.headers.authorization !== `Bearer ${PUBLISH_TOKEN}`) {
    response.writeHead(401).end();
    return;
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', function parseAndRoute() {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const list = Array.isArray(body) ? body : [body];
    for (const message of list) publishOne(message);
    response.writeHead(202, { 'content-type': 'application/json' }).end(`{"accepted":${list.length}}`);
  });
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** The floor: one JSON.stringify and one Buffer per message, ws.send to each socket of the rooms. */
async function startFloor() {
  const { WebSocketServer } = await import('ws');
  const server = createServer(restPublisher);
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
  const server = createServer(restPublisher);
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

/**
 * Outcomes of the hub's publish calls when started with `track` (the failover scenario): for call
 * `k` (the k-th publish, in order of the calls), when it started (ms, performance.now) and whether Redis
 * acknowledged it, and the numbers of the messages acknowledged.
 */
const outcomes = { startedAt: [], settledAt: [], ok: [], acked: [], pending: 0, errors: {} };

/**
 * What `outcomes` says about publishing since `sinceMs`: the longest refusal (a run of refused calls, from
 * the first one's start to the start of the next acknowledged call; to now when none was acknowledged
 * since), the refused calls, the longest a call waited for its answer, and when the last refusal started.
 */
function publishSummary(sinceMs) {
  let longestRefusalMs = 0;
  let refusedCalls = 0;
  let longestCallMs = 0;
  let lastRefusedAt;
  let lastAckedAt;
  let refusedSince;
  for (let k = 0; k < outcomes.startedAt.length; k++) {
    const startedAt = outcomes.startedAt[k];
    if (startedAt < sinceMs) continue;
    const ok = outcomes.ok[k];
    if (ok === undefined) continue;
    longestCallMs = Math.max(longestCallMs, outcomes.settledAt[k] - startedAt);
    if (ok) {
      lastAckedAt = startedAt;
      if (refusedSince !== undefined) longestRefusalMs = Math.max(longestRefusalMs, startedAt - refusedSince);
      refusedSince = undefined;
    } else {
      refusedCalls += 1;
      lastRefusedAt = startedAt;
      refusedSince ??= startedAt;
    }
  }
  if (refusedSince !== undefined)
    longestRefusalMs = Math.max(longestRefusalMs, performance.now() - refusedSince);
  return {
    nowMs: performance.now(),
    longestRefusalMs,
    refusedCalls,
    longestCallMs,
    lastRefusedAt,
    lastAckedAt,
    pending: outcomes.pending,
  };
}

process.on('message', (message) => {
  if (message.cmd === 'publish-summary') {
    send({ type: 'publish-summary', ...publishSummary(message.sinceMs ?? 0) });
  } else if (message.cmd === 'publish-outcomes') {
    // Waits (at most 15 s) for the calls still unanswered, then answers the acknowledged numbers.
    const deadline = performance.now() + 15_000;
    const answer = () => {
      if (outcomes.pending > 0 && performance.now() < deadline) return setTimeout(answer, 50);
      send({
        type: 'publish-outcomes',
        acked: outcomes.acked,
        errors: outcomes.errors,
        ...publishSummary(message.sinceMs ?? 0),
      });
    };
    answer();
  }
});

/** Our hub, attached to an Express app that also serves POST /api/ws/publish. */
async function startHub({ redis, redisPrefix, history, track }) {
  const { createATPWebSocketServer, MemoryBroker } = await import('@atp/ws-server');
  const { createATPRouter } = await import('@atp/ws-server/express');
  const { default: express } = await import('express');
  let broker;
  if (redis) {
    // `redis`: what RedisBroker takes to find Redis, `{ url }`, `{ sentinel }` or `{ cluster }`.
    const { RedisBroker } = await import('@atp/ws-redis');
    broker = new RedisBroker({ ...redis, prefix: redisPrefix });
  } else if (history) {
    // The replay scenarios' history: its limits, and a clock that the fill runs ahead of.
    broker = new MemoryBroker({ ...history, now: () => Date.now() - clockLagMs });
    historyBroker = broker;
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
  if (track) {
    // Each call's outcome is kept (the failover scenario); a refusal is expected, not reported.
    publishOne = (message) => {
      const k = outcomes.startedAt.length;
      outcomes.startedAt.push(performance.now());
      outcomes.pending += 1;
      const settle = (ok) => {
        outcomes.settledAt[k] = performance.now();
        outcomes.ok[k] = ok;
        outcomes.pending -= 1;
        if (ok) outcomes.acked.push(numberOf(message));
      };
      hub.publish(message).then(
        () => settle(true),
        (error) => {
          // How many calls were refused with each error: what the refusal was.
          const why = `${error?.name}: ${String(error?.message).slice(0, 120)}`;
          outcomes.errors[why] = (outcomes.errors[why] ?? 0) + 1;
          settle(false);
        },
      );
    };
  }
  hubPublish = (messages) => hub.publish(messages);
  closeTarget = async () => {
    await hub.close();
    await broker?.close();
    server.close();
  };
  return port;
}

/** The number in a message's `"@<n>:<stamp>"` marker (see scenario.mjs). */
function numberOf(message) {
  const marker = message.payload.message;
  return Number(marker.slice(1, marker.indexOf(':')));
}

send({ type: 'started' });
