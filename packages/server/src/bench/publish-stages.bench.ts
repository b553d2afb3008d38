// One microbenchmark per stage of a REST publish (`POST /api/ws/publish` with a
// batch of 500 messages, each to one suite of 5,000, one dashboard per suite):
// the body's JSON parse, the schema check, the broker append, the index lookup
// and the framing. Every case handles one whole batch: divide its time by 500
// for the cost per message. Run with `pnpm --filter @atp/ws-server bench:micro`.
// Development aid only: `pnpm bench` (selective-rest-5k) is the result.
import { type DataMessage, parseDataMessage, topicsForMessage } from '@atp/ws-protocol';
import { bench, describe } from 'vitest';
import { MemoryBroker } from '../memory-broker.js';
import { prepareEntry } from '../outbound.js';
import { SubscriptionIndex } from '../subscription-index.js';

const BATCH = 500;
const SUITES = 5000;

function mix(n: number): number {
  let x = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The bench scenario's message `n` (test progress to a suite drawn by a hash of `n`). */
function message(n: number): DataMessage {
  return {
    type: 'test_progress',
    payload: {
      suite_execution_id: 1 + (mix(n) % SUITES),
      test_execution_id: n,
      test_id: `test-${n % 1000}`,
      status: 'running',
      progress_percent: 50,
      message: `@${n}:${1_000_000 + n}`,
    },
  } as DataMessage;
}

const batch = Array.from({ length: BATCH }, (_, i) => message(i + 1));
const body = Buffer.from(JSON.stringify(batch));
// An HTTP body arrives in chunks of at most 64 KiB.
const chunks: Buffer[] = [];
for (let at = 0; at < body.length; at += 65536) chunks.push(body.subarray(at, at + 65536));
const checked = batch.map((m) => {
  const result = parseDataMessage(m);
  if (!result.ok) throw new Error(result.error.message);
  return result.message;
});

const jsons = checked.map((m) => JSON.stringify(m));

const index = new SubscriptionIndex<number>();
for (let suite = 1; suite <= SUITES; suite++) {
  index.add({ owner: suite, topic: 'test:progress', filter: { suite_execution_id: suite } });
}

let sink = 0;
let offset = 0;

describe(`one batch of ${BATCH} (divide by ${BATCH} for one message)`, () => {
  bench('1. HTTP body: concat chunks + toString + JSON.parse', () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[];
    sink += parsed.length;
  });

  bench('2. validation: parseDataMessage per message', () => {
    for (const m of batch) if (parseDataMessage(m).ok) sink += 1;
  });

  bench('3a. broker append: MemoryBroker.publish (stringify included)', async () => {
    // A fresh broker every 200 batches, so that its history stays the size of a run's.
    if (offset++ % 200 === 0) broker = new MemoryBroker();
    await broker.publish(checked);
  });

  bench('3b. of which JSON.stringify per message', () => {
    for (const m of checked) sink += JSON.stringify(m).length;
  });

  bench('4. index lookup: topicsForMessage + forEachMatch', () => {
    for (const m of checked) {
      for (const topic of topicsForMessage(m)) {
        index.forEachMatch(topic, m.payload, (s) => {
          sink += s.owner;
        });
      }
    }
  });

  bench('5. framing: prepareEntry + one payload with its sequence', () => {
    for (let i = 0; i < BATCH; i++) {
      const m = checked[i] as DataMessage;
      const entry = prepareEntry('AbCdEfGh', { offset: i + 1, message: m, json: jsons[i] as string });
      const payload = Buffer.allocUnsafe(entry.prefix.length + 4);
      entry.prefix.copy(payload, 0);
      payload.write('123}', entry.prefix.length);
      sink += payload.length;
    }
  });
});

let broker = new MemoryBroker();

export { sink };
