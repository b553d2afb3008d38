// The load generator: N raw `ws` clients in one process, the same code for
// every target (only the handshake differs), checking order and loss and
// timing each delivery. Driven by the orchestrator over IPC.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import {
  DASHBOARD_TOPICS,
  keyOfSubscription,
  keysOfMessage,
  messageFor,
  subscriptionsFor,
} from './scenario.mjs';

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
  else if (message.cmd === 'record') startRecording(message);
  else if (message.cmd === 'live-stats') send({ type: 'live-stats', ...liveStats(message) });
  else if (message.cmd === 'live-check') void liveCheck(message);
  else if (message.cmd === 'failover-check') void failoverCheck(message);
  else if (message.cmd === 'delay') {
    // This process's own event-loop delay and CPU since the last ask: what the live clients' latency owes to it.
    const cpu = process.cpuUsage(recording.cpu);
    send({ type: 'delay', maxMs: recording.delay.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 });
    recording.delay.reset();
    recording.cpu = process.cpuUsage();
  } else if (message.cmd === 'join') void joinAll(message);
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
  if (seen && n < seen[i].length) seen[i][n] = 1;
  if (n <= lastN[i]) reorders += 1;
  else if (recording && lastN[i] >= 0 && n !== lastN[i] + 1) liveHoles += n - lastN[i] - 1;
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
    if (value !== lastSequence[i] + 1) {
      sequenceGaps += 1;
      if (gapsOf) gapsOf[i] += 1;
    }
    lastSequence[i] = value;
  }
  if (recording && recording.count < recording.stamps.length) {
    recording.stamps[recording.count] = stamp;
    recording.latencies[recording.count++] = received - stamp;
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

// ── replay scenarios: live clients recorded by publish time; dashboards joining the run ──

/** Every live delivery's publish time and latency (µs), to take percentiles over any window of publish times. */
let recording;
let liveHoles = 0;

/** The failover scenario: per client, which message numbers arrived, and the holes in its `sequence`. */
let seen;
let gapsOf;

function startRecording({ capacity, numbers }) {
  if (numbers) {
    seen = Array.from({ length: sockets.length }, () => new Uint8Array(numbers + 1));
    gapsOf = new Int32Array(sockets.length);
  }
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  recording = {
    stamps: new Float64Array(capacity),
    latencies: new Float64Array(capacity),
    count: 0,
    delay,
    cpu: process.cpuUsage(),
  };
}

/** Latency percentiles (ms) of the live deliveries published in [fromUs, toUs). */
function liveStats({ fromUs, toUs }) {
  const picked = [];
  const r = recording;
  for (let k = 0; k < r.count; k++) {
    if (r.stamps[k] >= fromUs && r.stamps[k] < toUs) picked.push(r.latencies[k]);
  }
  const sorted = Float64Array.from(picked).sort();
  const ms = (q) => (sorted.length ? percentile(sorted, q) / 1000 : null);
  return {
    deliveries: sorted.length,
    p50: ms(0.5),
    p99: ms(0.99),
    p999: ms(0.999),
    max: sorted.length ? sorted[sorted.length - 1] / 1000 : null,
    overflow: r.count >= r.stamps.length,
  };
}

/** Waits (at most 10 s) for every live client to have message `last`; counts what is missing. */
async function liveCheck({ last }) {
  const deadline = Date.now() + 10_000;
  const behind = () => {
    let missing = 0;
    for (let i = 0; i < sockets.length; i++) missing += Math.max(0, last - lastN[i]);
    return missing;
  };
  while (behind() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  send({ type: 'live-checked', missing: behind(), holes: liveHoles, reorders, sequenceGaps, closedEarly });
}

/**
 * After a failover: waits (at most 10 s) for every open client to have the newest acknowledged
 * message, then counts per client the acknowledged messages it never got, and whether a hole in its
 * `sequence` (the hub's explicit gap) told it so. A client missing messages without a hole lost them
 * silently.
 */
async function failoverCheck({ acked }) {
  const newest = Math.max(0, ...acked);
  const deadline = Date.now() + 10_000;
  const open = () => sockets.map((ws, i) => [ws, i]).filter(([ws]) => ws?.readyState === WebSocket.OPEN);
  while (open().some(([, i]) => lastN[i] < newest) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const missing = [];
  let withGap = 0;
  let silent = 0;
  for (const [, i] of open()) {
    let m = 0;
    for (const n of acked) if (!seen[i][n]) m += 1;
    missing.push(m);
    if (gapsOf[i] > 0) withGap += 1;
    else if (m > 0) silent += 1;
  }
  send({
    type: 'failover-checked',
    clients: missing.length,
    missing: missing.sort((a, b) => a - b),
    withGap,
    silent,
    reorders,
    controlErrors,
    closedEarly,
  });
}

/** Reads `…,"offset":O,"sequence":S}` at the end of a data frame: [offset, sequence], or undefined. */
const SEQUENCE_KEY = Buffer.from(',"sequence":');
const OFFSET_KEY = Buffer.from(',"offset":');

function tailOf(data) {
  let end = data.length - 1;
  if (data[end] !== 0x7d) return undefined;
  let sequence = 0;
  let scale = 1;
  while (end > 0 && data[end - 1] >= 48 && data[end - 1] <= 57) {
    sequence += (data[end - 1] - 48) * scale;
    scale *= 10;
    end -= 1;
  }
  if (scale === 1 || data.compare(SEQUENCE_KEY, 0, SEQUENCE_KEY.length, end - SEQUENCE_KEY.length, end) !== 0)
    return undefined;
  end -= SEQUENCE_KEY.length;
  let offset = 0;
  scale = 1;
  while (end > 0 && data[end - 1] >= 48 && data[end - 1] <= 57) {
    offset += (data[end - 1] - 48) * scale;
    scale *= 10;
    end -= 1;
  }
  if (data.compare(OFFSET_KEY, 0, OFFSET_KEY.length, end - OFFSET_KEY.length, end) !== 0) return undefined;
  return [offset, sequence];
}

/** Index in DASHBOARD_TYPES of a data frame `{"type":"…`. */
function typeIndexOf(data) {
  const c = data[9];
  if (c === 0x74) return data[14] === 0x70 ? 0 : 1; // test_progress, test_completed
  if (c === 0x65) return 2; // event
  if (c === 0x6c) return 3; // log_entry
  return -1;
}

/**
 * `joiners` dashboards open at once: each connects and subscribes to
 * DASHBOARD_TOPICS of the run's suite with `from: "start"`, counts the
 * history each `subscribed` announces (the frames of that type up to its
 * offset), checks `sequence` (no hole) and offsets (no duplicate), and is
 * caught up at the first live message due after its history was complete:
 * by then every message due before has arrived (they come in order), the
 * replays' catch-up included. Answers `joined` once every joiner is caught
 * up, or after `timeoutMs`.
 */
async function joinAll({ url, joiners, suite, sourceAddresses, offsetBound, timeoutMs }) {
  const cpu = process.cpuUsage();
  const started = micros();
  const all = [];
  let pending = joiners;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const subscribes = DASHBOARD_TOPICS.map((topic, id) =>
    JSON.stringify({
      type: 'subscribe',
      id,
      payload: { topic, filter: { suite_execution_id: suite }, from: 'start' },
    }),
  );
  for (let i = 0; i < joiners; i++) {
    const j = {
      openedAt: micros(),
      subscribedAt: 0,
      answers: 0,
      replayed: [0, 0, 0, 0],
      boundary: [-1, -1, -1, -1],
      complete: [true, true, true, true],
      history: [0, 0, 0, 0],
      announced: 0,
      historyTotal: 0,
      historyDoneAt: 0,
      caughtUpAt: 0,
      frames: 0,
      liveFrames: 0,
      lastSequence: 0,
      sequenceHoles: 0,
      short: 0,
      duplicates: 0,
      liveReorders: 0,
      lastLiveN: -1,
      seen: new Uint8Array(offsetBound),
      bytesAtSubscribe: 0,
      bytes: 0,
      errors: [],
      closed: false,
    };
    all.push(j);
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      localAddress: sourceAddresses[i % sourceAddresses.length],
    });
    j.ws = ws;
    const done = () => {
      pending -= 1;
      if (pending === 0) finish();
    };
    ws.on('error', (error) => j.errors.push(String(error.message)));
    ws.on('close', (code) => {
      j.closed = true;
      if (!j.caughtUpAt) {
        j.errors.push(`closed with ${code} before caught up`);
        done();
      }
    });
    ws.on('message', (data) => {
      const tail = tailOf(data);
      if (!tail) {
        const t = data.toString();
        if (t.startsWith('{"type":"connected"')) {
          j.subscribedAt = micros();
          j.bytesAtSubscribe = ws._socket.bytesRead;
          for (const frame of subscribes) ws.send(frame);
        } else if (t.startsWith('{"type":"subscribed"')) {
          const { id, payload } = JSON.parse(t);
          j.answers += 1;
          j.replayed[id] = payload.history?.replayed ?? 0;
          j.complete[id] = payload.history?.complete === true;
          j.boundary[id] = payload.offset;
          j.announced += j.replayed[id];
        } else if (!t.startsWith('{"type":"pong"')) {
          j.errors.push(t.slice(0, 200));
        }
        return;
      }
      const [offset, sequence] = tail;
      j.frames += 1;
      if (sequence !== j.lastSequence + 1) {
        j.sequenceHoles += 1;
        // A replay cut short (history trimmed or compacted under it) ends at a hole in the numbering:
        // what the subscription being replayed announced and did not send is short.
        const id = j.answers - 1;
        if (id >= 0 && j.history[id] < j.replayed[id]) {
          j.short += j.replayed[id] - j.history[id];
          j.announced -= j.replayed[id] - j.history[id];
          j.replayed[id] = j.history[id];
        }
      }
      j.lastSequence = sequence;
      if (offset >= j.seen.length) {
        const grown = new Uint8Array(Math.max(offset + 1, j.seen.length * 2));
        grown.set(j.seen);
        j.seen = grown;
      }
      if (j.seen[offset]) j.duplicates += 1;
      j.seen[offset] = 1;
      const type = typeIndexOf(data);
      if (type >= 0 && j.boundary[type] >= offset) {
        j.history[type] += 1;
        j.historyTotal += 1;
        if (j.answers === DASHBOARD_TOPICS.length && j.historyTotal === j.announced)
          j.historyDoneAt = micros();
        return;
      }
      if (!j.historyDoneAt) {
        // History announced as 0 for every subscription still to answer: done once all answered.
        if (j.answers === DASHBOARD_TOPICS.length && j.historyTotal === j.announced)
          j.historyDoneAt = micros();
        else return;
      }
      const at = data.indexOf(MARK);
      if (at < 0) return;
      const received = micros();
      const [n, colon] = readNumber(data, at + 2, COLON);
      const [stamp] = readNumber(data, colon + 1, QUOTE);
      j.liveFrames += 1;
      if (n <= j.lastLiveN) j.liveReorders += 1;
      j.lastLiveN = n;
      if (!j.caughtUpAt && stamp >= j.historyDoneAt) {
        j.caughtUpAt = received;
        j.bytes = ws._socket.bytesRead - j.bytesAtSubscribe;
        done();
      }
    });
  }
  const timer = setTimeout(finish, timeoutMs);
  await finished;
  clearTimeout(timer);
  const ms = (us) => (us ? (us - started) / 1000 : null);
  const c = process.cpuUsage(cpu);
  send({
    type: 'joined',
    generatorCpuMs: (c.user + c.system) / 1000,
    joiners: all.map((j) => ({
      connectMs: j.subscribedAt ? (j.subscribedAt - j.openedAt) / 1000 : null,
      historyMs: ms(j.historyDoneAt),
      caughtUpMs: ms(j.caughtUpAt),
      announced: j.announced,
      replayed: j.replayed,
      complete: j.complete,
      history: j.history,
      historyReceived: j.historyTotal,
      short: j.short,
      frames: j.frames,
      liveFrames: j.liveFrames,
      bytes: j.caughtUpAt ? j.bytes : j.ws._socket ? j.ws._socket.bytesRead - j.bytesAtSubscribe : null,
      sequenceHoles: j.sequenceHoles,
      duplicates: j.duplicates,
      liveReorders: j.liveReorders,
      errors: j.errors.slice(0, 5),
    })),
  });
}
