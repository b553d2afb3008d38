// The JavaScript cost of one delivery, without the kernel: 1,000 real WebSocket
// connections to one process, whose server-side sockets' handles are told that
// every write succeeded at once (nothing reaches the kernel). Prints user CPU µs
// per delivery of the hub and of the bare `ws` floor, one message per turn.
// A development tool for the hot path, not a result: `pnpm bench` is.
//   node bench/scripts/hot-path.mjs [clients=1000] [messages=3000] [rounds=3]
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { createATPWebSocketServer } from '@atp/ws-server';
import { messageFor } from '../src/scenario.mjs';

const [clients = 1000, messages = 3000, rounds = 3] = process.argv.slice(2).map(Number);
const immediate = () => new Promise((resolve) => setImmediate(resolve));

/** Makes every write of this server-side socket "succeed" without a syscall. */
function muzzle(socket) {
  const handle = socket._handle;
  handle.writeBuffer = () => 0;
  handle.writev = () => 0;
  handle.writeUtf8String = () => 0;
  handle.writeLatin1String = () => 0;
}

async function connectAll(port, onOpen) {
  const sockets = [];
  for (let i = 0; i < clients; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws/updates`);
    ws.greeting = next(ws, 'connected');
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await onOpen(ws);
    sockets.push(ws);
  }
  return sockets;
}

async function measure(name, publish) {
  for (let m = 0; m < 200; m++) {
    publish(messageFor('fanout', m, 0));
    await immediate();
  }
  const results = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    for (let m = 0; m < messages; m++) {
      publish(messageFor('fanout', m, 0));
      await immediate();
    }
    const used = process.cpuUsage(start);
    results.push((used.user + used.system) / (messages * clients));
  }
  results.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(24)} ${results.map((x) => x.toFixed(3)).join(' ')} µs/delivery (median ${results[results.length >> 1].toFixed(3)})`,
  );
}

async function floor() {
  const server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const room = new Set();
  wss.on('connection', (ws) => {
    room.add(ws);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets = await connectAll(server.address().port, async () => {});
  for (const ws of room) muzzle(ws._socket);
  const text = { binary: false };
  await measure('floor', (message) => {
    const frame = Buffer.from(JSON.stringify(message));
    for (const ws of room) ws.send(frame, text);
  });
  for (const ws of sockets) ws.terminate();
  server.close();
}

/** Waits for the first message of `type` on a raw client. */
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

/**
 * `distinct`: every connection resumes with a sequence of its own, so that no
 * two share a frame (the worst case of the hub's per-tick frame sharing).
 */
async function hub(distinct) {
  const server = createServer();
  const raw = [];
  server.on('connection', (socket) => raw.push(socket));
  const hub = createATPWebSocketServer({ server, maxConnectionsPerIp: clients + 10 });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  await hub.ready;
  const subscriptions = [{ topic: 'test:progress', filter: { suite_execution_id: 1 } }];
  let n = 0;
  const sockets = await connectAll(server.address().port, async (ws) => {
    const connected = await ws.greeting;
    if (distinct) {
      const { epoch, offset } = connected.payload;
      const resumed = next(ws, 'resumed');
      ws.send(
        JSON.stringify({ type: 'resume', payload: { epoch, offset, sequence: 1000 * n++, subscriptions } }),
      );
      await resumed;
    } else {
      const subscribed = next(ws, 'subscribed');
      ws.send(JSON.stringify({ type: 'subscribe', payload: subscriptions[0] }));
      await subscribed;
    }
  });
  for (const socket of raw) muzzle(socket);
  await measure(distinct ? 'hub, distinct sequences' : 'hub', (message) => void hub.publish(message));
  for (const ws of sockets) ws.terminate();
  await hub.close();
  server.close();
}

const only = process.env.HOT_PATH_ONLY;
if (only !== 'hub') await floor();
if (only !== 'floor') await hub(false);
if (only !== 'floor') await hub(true);
