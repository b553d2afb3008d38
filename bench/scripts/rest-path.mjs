// The JavaScript cost of a message published with POST /api/ws/publish to one
// client among many (selective-rest-5k without the kernel): `clients` real
// WebSocket connections, each subscribed to its own suite, whose server-side
// sockets' handles are told that every write succeeded at once; bodies of 500
// messages to suites drawn by a hash, POSTed over loopback HTTP from this same
// process (bodies serialized beforehand). Prints CPU µs per message and the
// garbage collector's share, for the floor (read, JSON.parse, a Map of Sets,
// ws.send) and the hub (express router). A development tool, not a result:
// `pnpm bench` is.
//   node bench/scripts/rest-path.mjs [clients=2000] [messages=20000] [rounds=3]
import { Agent, createServer, request } from 'node:http';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import express from 'express';
import { WebSocket, WebSocketServer } from 'ws';
import { keyOfSubscription, keysOfMessage, messageFor, subscriptionsFor } from '../src/scenario.mjs';

// REST_PATH_SERVER=/path/to/packages/server/dist: another build of the hub (say, of main) to compare.
const dist = process.env.REST_PATH_SERVER;
const { createATPWebSocketServer } = await import(dist ? `${dist}/index.js` : '@atp/ws-server');
const { createATPRouter } = await import(dist ? `${dist}/express.js` : '@atp/ws-server/express');
const [clients = 2000, messages = 20000, rounds = 3] = process.argv.slice(2).map(Number);
const BURST = 500;
const TOKEN = 'rest-path-token';

let gcMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcMs += entry.duration;
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcCount += 1;
  }
}).observe({ entryTypes: ['gc'] });

function muzzle(socket) {
  const handle = socket._handle;
  handle.writeBuffer = () => 0;
  handle.writev = () => 0;
  handle.writeUtf8String = () => 0;
  handle.writeLatin1String = () => 0;
}

function next(ws, type) {
  return new Promise((resolve) => {
    ws.on('message', function onMessage(data) {
      const message = JSON.parse(String(data));
      if (message.type !== type) return;
      ws.off('message', onMessage);
      resolve(message);
    });
  });
}

async function connectAll(port, hub) {
  const sockets = [];
  for (let i = 0; i < clients; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws/updates`);
    const greeting = hub ? next(ws, 'connected') : undefined;
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const [subscription] = subscriptionsFor('selective-random', i, clients, clients);
    if (greeting) await greeting;
    const subscribed = next(ws, 'subscribed');
    ws.send(JSON.stringify({ type: 'subscribe', payload: subscription }));
    await subscribed;
    sockets.push(ws);
  }
  return sockets;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function post(port, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/ws/publish',
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'content-length': body.length,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 202 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function bodies(from, count) {
  const list = [];
  for (let n = from; n < from + count; n += BURST) {
    const batch = [];
    for (let k = n; k < n + BURST; k++) batch.push(messageFor('selective-random', k, 0, clients));
    list.push(Buffer.from(JSON.stringify(batch)));
  }
  return list;
}

async function measure(name, port) {
  for (const body of bodies(0, 5000)) await post(port, body);
  const results = [];
  for (let r = 0; r < rounds; r++) {
    const list = bodies(5000 + r * messages, messages);
    const gcBefore = gcMs;
    const countBefore = gcCount;
    const heapBefore = process.memoryUsage().heapUsed;
    const start = process.cpuUsage();
    for (const body of list) await post(port, body);
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.cpuUsage(start);
    const heapAfter = process.memoryUsage().heapUsed;
    const cpu = (used.user + used.system) / 1000;
    results.push({
      us: (cpu * 1000) / messages,
      gc: (gcMs - gcBefore) / cpu,
      scavenges: gcCount - countBefore,
      bytes: (heapAfter - heapBefore) / messages,
    });
  }
  const sorted = [...results].sort((a, b) => a.us - b.us);
  // With --max-semi-space-size large enough that no collection runs in a round: bytes allocated per message.
  if (results.every((x) => x.scavenges === 0)) {
    console.log(
      `${name.padEnd(6)} JS heap allocated: ${results.map((x) => x.bytes.toFixed(0)).join(' ')} B/msg`,
    );
  }
  console.log(
    `${name.padEnd(6)} ${results.map((x) => `${x.us.toFixed(2)} µs (gc ${(x.gc * 100).toFixed(0)}%, ${x.scavenges} scav.)`).join('  ')}  median ${sorted[sorted.length >> 1].us.toFixed(2)} µs/msg`,
  );
}

async function floor() {
  const rooms = new Map();
  const text = { binary: false };
  const publishOne = (message) => {
    const frame = Buffer.from(JSON.stringify(message));
    for (const key of keysOfMessage(message)) {
      const room = rooms.get(key);
      if (room) for (const ws of room) ws.send(frame, text);
    }
  };
  const server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return res.writeHead(401).end();
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const list = Array.isArray(body) ? body : [body];
      for (const message of list) publishOne(message);
      res.writeHead(202, { 'content-type': 'application/json' }).end(`{"accepted":${list.length}}`);
    });
  });
  const wss = new WebSocketServer({ server, path: '/api/ws/updates', perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      const key = keyOfSubscription(message.payload);
      let room = rooms.get(key);
      if (!room) {
        room = new Set();
        rooms.set(key, room);
      }
      room.add(ws);
      ws.send(JSON.stringify({ type: 'subscribed', id: message.id }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets = await connectAll(server.address().port, false);
  for (const ws of wss.clients) muzzle(ws._socket);
  await measure('floor', server.address().port);
  for (const ws of sockets) ws.terminate();
  server.close();
}

async function hub() {
  const app = express();
  const server = createServer(app);
  const raw = [];
  server.on('upgrade', (_request, socket) => raw.push(socket));
  const hub = createATPWebSocketServer({ server, maxConnectionsPerIp: clients + 10 });
  app.use(createATPRouter(hub, { publishToken: TOKEN, clientScript: false }));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  await hub.ready;
  const sockets = await connectAll(server.address().port, true);
  for (const socket of raw) muzzle(socket);
  await measure('hub', server.address().port);
  for (const ws of sockets) ws.terminate();
  await hub.close();
  server.close();
}

const only = process.env.REST_PATH_ONLY;
if (only !== 'hub') await floor();
if (only !== 'floor') await hub();
agent.destroy();
