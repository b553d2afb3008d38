// Reproduces what a replay (`subscribe` with `from: "start"`) sends when the memory broker compacts
// or trims its history between the replay's count (which `subscribed.history.replayed` announces)
// and its sending. Not a benchmark: a check, for the hub's developers.
//
//   node scripts/replay-under-compaction.mjs [compact|trim] [messages]
//
// compact: `messages` test_progress of 10 tests (all but each test's newest are superseded), history
//          bounded to `messages`, recent window 100 messages / 0 ms: one more message compacts it.
// trim:    `messages` log entries (never compacted), the same bound: one more trims the oldest 10%.
// The client subscribes from the start; when `subscribed` arrives (the count is done, the sending
// has not read its second page yet) one more message is published. It then reports the messages
// announced, the history received, and whether their offsets and sequences have holes.
import { createServer } from 'node:http';
import { createATPWebSocketServer, MemoryBroker } from '@atp/ws-server';
import { WebSocket } from 'ws';

const mode = process.argv[2] ?? 'compact';
const N = Number(process.argv[3] ?? 20_000);
const broker = new MemoryBroker({ maxMessages: N, recentMessages: 100, recentWindowMs: 0 });
const server = createServer();
const hub = createATPWebSocketServer({ server, broker });
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
await hub.ready;

const message = (k) =>
  mode === 'trim'
    ? {
        type: 'log_entry',
        payload: {
          suite_execution_id: 1,
          level: 'info',
          message: `line ${k}`,
          timestamp: '2025-01-01T00:00:00Z',
        },
      }
    : {
        type: 'test_progress',
        payload: {
          suite_execution_id: 1,
          test_execution_id: k % 10,
          test_id: `t${k % 10}`,
          status: 'running',
          progress_percent: k % 100,
        },
      };
const topic = mode === 'trim' ? 'logs' : 'test:progress';
for (let k = 0; k < N; k += 100) await hub.publish(Array.from({ length: 100 }, (_, j) => message(k + j)));
await new Promise((resolve) => setTimeout(resolve, 5));
const keptBefore = broker.size;

const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}/api/ws/updates`);
let announced;
let boundary;
let keptAfter;
let history = 0;
let live = 0;
let lastOffset = 0;
let offsetJumps = 0;
let firstJump;
let lastSequence = 0;
let sequenceHoles = 0;
ws.on('message', async (data) => {
  const text = data.toString();
  if (text.startsWith('{"type":"connected"')) {
    const payload = { topic, filter: { suite_execution_id: 1 }, from: 'start' };
    ws.send(JSON.stringify({ type: 'subscribe', id: 1, payload }));
  } else if (text.startsWith('{"type":"subscribed"')) {
    const { payload } = JSON.parse(text);
    announced = payload.history.replayed;
    boundary = payload.offset;
    await hub.publish(message(N));
    keptAfter = broker.size;
  } else {
    const { offset, sequence } = JSON.parse(text);
    if (sequence !== lastSequence + 1) sequenceHoles += 1;
    lastSequence = sequence;
    if (offset > boundary) {
      live += 1;
      return;
    }
    history += 1;
    // Log entries are never compacted: every offset of the history must arrive.
    if (mode === 'trim' && offset !== lastOffset + 1) {
      offsetJumps += 1;
      firstJump ??= `${lastOffset} -> ${offset}`;
    }
    lastOffset = offset;
  }
});
setTimeout(async () => {
  console.log({
    mode,
    keptBefore,
    keptAfter,
    announced,
    historyReceived: history,
    live,
    offsetJumps,
    firstJump,
    sequenceHoles,
  });
  ws.close();
  await hub.close();
  server.close();
}, 3000);
