// One client process of the client-cpu scenario: a single connection receiving the scenario's
// messages, either through @atp/ws-client (`ATPWebSocket`, from the workspace build or from the
// build given in `module`) or through a bare `ws` socket that parses each frame and reads the same
// field (the floor). It reports its own CPU time over the measured phase: the client's cost per
// delivered message, next to the least any client can spend on the same frames.
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { subscriptionsFor } from './scenario.mjs';

let received = 0;
let last = 0;
let reorders = 0;
let duplicates = 0;
let gaps = 0;
let phase;
let client;

function send(message) {
  process.send?.(message);
}

/** Every message's number, from its `"@<n>:<stamp>"` marker. */
function numberOf(payload) {
  const marker = payload.message;
  return Number(marker.slice(1, marker.indexOf(':')));
}

function onMessage(payload) {
  const n = numberOf(payload);
  if (n === last) duplicates += 1;
  else if (n < last) reorders += 1;
  last = Math.max(last, n);
  received += 1;
  if (!phase) return;
  phase.got += 1;
  if (phase.got % phase.reportEvery === 0 || n >= phase.last) send({ type: 'progress', through: n });
}

async function connect({ url, target, module }) {
  const [subscription] = subscriptionsFor('fanout', 0, 1);
  if (target === 'floor') {
    const ws = new WebSocket(url);
    client = ws;
    await new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString());
        if (message.type === 'test_progress') onMessage(message.payload);
        else if (message.type === 'subscribed') resolve();
        else if (message.type === 'connected')
          ws.send(JSON.stringify({ type: 'subscribe', id: 1, payload: subscription }));
      });
    });
    return;
  }
  const { ATPWebSocket } = await import(pathToFileURL(module).href);
  const ws = new ATPWebSocket({ url, WebSocket, pingInterval: 0 });
  client = ws;
  ws.on('test_progress', (payload) => onMessage(payload));
  ws.on('sequence_gap', () => {
    gaps += 1;
  });
  const subscribed = new Promise((resolve) => ws.once('subscribed', resolve));
  ws.subscribe(subscription.topic, subscription.filter);
  await ws.connect();
  await subscribed;
}

process.on('message', (message) => {
  if (message.cmd === 'connect') {
    connect(message).then(
      () => send({ type: 'connected', ms: 0, failed: 0 }),
      (error) => send({ type: 'connected', ms: 0, failed: 1, error: String(error?.stack ?? error) }),
    );
  } else if (message.cmd === 'phase') {
    phase = {
      got: 0,
      last: message.from + message.count - 1,
      reportEvery: message.reportEvery,
      cpu: process.cpuUsage(),
      started: performance.now(),
    };
    send({ type: 'phase-ready' });
  } else if (message.cmd === 'report') {
    const cpu = process.cpuUsage(phase.cpu);
    send({
      type: 'report',
      cpuMs: (cpu.user + cpu.system) / 1000,
      userMs: cpu.user / 1000,
      deliveries: phase.got,
      seconds: (performance.now() - phase.started) / 1000,
      received,
      reorders,
      duplicates,
      sequenceGaps: gaps,
    });
  } else if (message.cmd === 'exit') {
    if (client?.terminate) client.terminate();
    else client?.disconnect();
    process.exit(0);
  }
});

send({ type: 'started' });
