// The load generator: N raw `ws` clients in one process, the same code for
// every target (only the handshake differs), checking order and loss and
// timing each delivery. Driven by the orchestrator over IPC.
import { WebSocket } from 'ws';
import { subscriptionsFor, keyOfSubscription, keysOfMessage, messageFor } from './scenario.mjs';

const MARK = Buffer.from('"@');
const COLON = 0x3a;
const QUOTE = 0x22;

let config;
let sockets = [];
/** Per client: last message number seen, last hub sequence, deliveries. */
let lastN;
let lastSequence;
let counts;
let reorders = 0;
let sequenceGaps = 0;
let controlErrors = 0;
let closedEarly = 0;
/** The running phase: messages [from, from + count). */
let phase;

function micros() {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}

function send(message) {
  process.send?.(message);
}

process.on('message', (message) => {
  if (message.cmd === 'connect') void connectAll(message);
  else if (message.cmd === 'phase') startPhase(message);
  else if (message.cmd === 'report') send({ type: 'report', ...report() });
  else if (message.cmd === 'exit') {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});

async function connectAll(message) {
  config = message;
  const { clients } = config;
  lastN = new Float64Array(clients).fill(-1);
  lastSequence = new Float64Array(clients);
  counts = new Float64Array(clients);
  sockets = new Array(clients);
  const started = Date.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < clients) {
      const i = next++;
      try {
        await connectOne(i);
      } catch (error) {
        failed += 1;
        if (failed <= 3) console.error(`client ${i}: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency ?? 64 }, worker));
  send({ type: 'connected', clients, failed, ms: Date.now() - started });
}

function connectOne(i) {
  const { target, urls, sourceAddresses, kind, clients, suites } = config;
  const url = urls[i % urls.length];
  const subscriptions = subscriptionsFor(kind, i, clients, suites);
  const localAddress = sourceAddresses[i % sourceAddresses.length];
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
    sockets[i] = ws;
    let ready = false;
    let awaiting = subscriptions.length;
    const timer = setTimeout(() => fail(new Error('handshake timed out')), 30_000);
    const fail = (error) => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      ws.terminate();
      reject(error);
    };
    const done = () => {
      ready = true;
      clearTimeout(timer);
      resolve();
    };
    ws.on('error', (error) => fail(error));
    ws.on('close', () => {
      if (ready) closedEarly += 1;
      else fail(new Error('closed during handshake'));
    });
    const subscribeFrames =
      target === 'socketio'
        ? [`42${JSON.stringify(['subscribe', subscriptions.map(keyOfSubscription)])}`]
        : subscriptions.map((s, id) => JSON.stringify({ type: 'subscribe', id, payload: s }));
    if (target === 'socketio') awaiting = 1;
    if (target === 'floor') {
      ws.on('open', () => {
        for (const frame of subscribeFrames) ws.send(frame);
      });
    }
    ws.on('message', (data) => {
      if (ready) return onData(i, data, ws);
      const text = data.toString();
      if (target === 'socketio') {
        if (text.startsWith('0{')) ws.send('40');
        else if (text.startsWith('40')) ws.send(subscribeFrames[0]);
        else if (text.startsWith('42["subscribed"')) awaiting -= 1;
        else if (text === '2') ws.send('3');
      } else if (text.startsWith('{"type":"connected"')) {
        if (target === 'hub' && config.distinctSequences) {
          // Resumes at the stream's head with a sequence no other client has.
          const { epoch, offset } = JSON.parse(text).payload;
          lastSequence[i] = 1000 * i;
          awaiting = 1;
          const payload = { epoch, offset, sequence: lastSequence[i], subscriptions };
          ws.send(JSON.stringify({ type: 'resume', payload }));
        } else {
          for (const frame of subscribeFrames) ws.send(frame);
        }
      } else if (
        text.startsWith('{"type":"subscribed"') ||
        text.startsWith('{"type":"resumed","payload":{"recovered":true')
      ) {
        awaiting -= 1;
      } else if (text.startsWith('{"type":"error"')) {
        fail(new Error(text));
      }
      if (awaiting === 0) done();
    });
  });
}

/** Reads the decimal number in `data` from `at` to the byte `end`. */
function readNumber(data, at, end) {
  let value = 0;
  for (let i = at; i < data.length; i++) {
    const c = data[i];
    if (c === end) return [value, i];
    value = value * 10 + (c - 48);
  }
  return [value, data.length];
}

function onData(i, data, ws) {
  const at = data.indexOf(MARK);
  if (at < 0) {
    // Engine.IO heartbeat; any other frame is a control message we do not expect now.
    if (data.length === 1 && data[0] === 0x32) ws.send('3');
    else controlErrors += 1;
    return;
  }
  const received = micros();
  const [n, colon] = readNumber(data, at + 2, COLON);
  const [stamp] = readNumber(data, colon + 1, QUOTE);
  if (n <= lastN[i]) reorders += 1;
  lastN[i] = n;
  counts[i] += 1;
  if (config.target === 'hub') {
    // `…,"sequence":N}`: the hub's per-connection numbering must have no hole.
    let end = data.length - 1;
    let value = 0;
    let scale = 1;
    while (end > 0 && data[end - 1] >= 48 && data[end - 1] <= 57) {
      value += (data[end - 1] - 48) * scale;
      scale *= 10;
      end -= 1;
    }
    if (value !== lastSequence[i] + 1) sequenceGaps += 1;
    lastSequence[i] = value;
  }
  const p = phase;
  if (!p || n < p.from || n >= p.end) return;
  p.deliveries += 1;
  if (p.firstStamp > stamp) p.firstStamp = stamp;
  p.lastReceived = received;
  if (p.latencyCount < p.latencies.length) p.latencies[p.latencyCount++] = received - stamp;
  const index = n - p.from;
  if (--p.remaining[index] === 0 && index === p.completed) advance(p);
}

function advance(p) {
  while (p.completed < p.count && p.remaining[p.completed] <= 0) p.completed += 1;
  const through = p.from + p.completed - 1;
  if (through - p.reported >= p.reportEvery || p.completed === p.count) {
    p.reported = through;
    send({ type: 'progress', through });
  }
}

/** Number of clients each message of the phase must reach. */
function expectedCounts(from, count) {
  const { kind, clients, suites } = config;
  const perKey = new Map();
  for (let i = 0; i < clients; i++) {
    if (sockets[i]?.readyState !== WebSocket.OPEN) continue;
    for (const s of subscriptionsFor(kind, i, clients, suites)) {
      const key = keyOfSubscription(s);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
    }
  }
  const remaining = new Int32Array(count);
  let total = 0;
  for (let k = 0; k < count; k++) {
    const message = messageFor(kind, from + k, 0, suites);
    let expected = 0;
    for (const key of keysOfMessage(message)) expected += perKey.get(key) ?? 0;
    remaining[k] = expected;
    total += expected;
  }
  return { remaining, total };
}

function startPhase({ from, count, reportEvery }) {
  const { remaining, total } = expectedCounts(from, count);
  phase = {
    from,
    count,
    end: from + count,
    remaining,
    expected: total,
    deliveries: 0,
    completed: 0,
    reported: from - 1,
    reportEvery,
    firstStamp: Number.POSITIVE_INFINITY,
    lastReceived: 0,
    latencies: new Float64Array(Math.min(total, 2_000_000)),
    latencyCount: 0,
    cpu: process.cpuUsage(),
  };
  // Messages nobody should get (filtered out) are complete at once.
  advance(phase);
  send({ type: 'phase-ready' });
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function report() {
  const p = phase;
  const cpu = process.cpuUsage(p?.cpu);
  const sorted = p ? p.latencies.subarray(0, p.latencyCount).sort() : new Float64Array();
  const open = sockets.filter((ws) => ws?.readyState === WebSocket.OPEN).length;
  return {
    expected: p?.expected ?? 0,
    deliveries: p?.deliveries ?? 0,
    losses: p ? p.expected - p.deliveries : 0,
    completedThrough: p ? p.from + p.completed - 1 : 0,
    reorders,
    sequenceGaps,
    controlErrors,
    closedEarly,
    open,
    seconds: p && p.lastReceived > 0 ? (p.lastReceived - p.firstStamp) / 1e6 : 0,
    latencyMs: {
      p50: percentile(sorted, 0.5) / 1000,
      p99: percentile(sorted, 0.99) / 1000,
      p999: percentile(sorted, 0.999) / 1000,
      max: (sorted.at(-1) ?? 0) / 1000,
    },
    generatorCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

send({ type: 'started' });
