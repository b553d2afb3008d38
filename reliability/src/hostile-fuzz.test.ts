import {
  CLIENT_MESSAGE_TYPES,
  describeTopic,
  ErrorCode,
  type Filter,
  matchesFilter,
  parseClientMessage,
  validateFilter,
} from '@atp/ws-protocol';
import { createATPWebSocketServer } from '@atp/ws-server';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { disposer, figure } from './harness/common.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const ERROR_CODES = new Set<string>(Object.values(ErrorCode));
const POLLUTERS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

const topics = fc.constantFrom(
  'test:progress',
  'test:completed',
  'suite:progress',
  'suite:completed',
  'events:*',
  'events:tool_call',
  'logs',
  'delta',
  'events:',
  'nope',
  '__proto__',
);
const filterKeys = fc.constantFrom(
  'suite_execution_id',
  'test_id',
  'event_type',
  'level',
  'resource_type',
  ...POLLUTERS,
);
const hugeNumbers = fc.constantFrom(
  1e308,
  -1e308,
  2 ** 53 + 1,
  -(2 ** 53) - 1,
  5e-324,
  -0,
  0.5,
  1e21,
  1.2345678901234568e29,
);
/** Number literals JSON.parse must squeeze into a double: overflow to Infinity, underflow, beyond 2^53. */
const rawNumberText = fc.constantFrom(
  '1e400',
  '-1e400',
  '123456789012345678901234567890',
  '1e-400',
  '-0',
  '9007199254740993',
);
const scalar = fc.oneof(
  fc.integer(),
  hugeNumbers,
  fc.string({ maxLength: 300 }),
  fc.constantFrom('debug', 'info', 'error', 'tool_call', 'test-1', ''),
  fc.boolean(),
  fc.constant(null),
);
const filterValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 120 }), fc.jsonValue({ maxDepth: 4 }));

/** JSON text of an object whose keys may be `__proto__` & co: JSON.parse makes them own properties. */
function objectText(entries: [string, string][]): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;
}
const json = (value: unknown) => JSON.stringify(value) ?? 'null';

const filterText = fc
  .array(fc.tuple(filterKeys, fc.oneof(filterValue.map(json), rawNumberText)), { maxLength: 6 })
  .map((entries) => objectText(entries));

/** Nested `depth` times: arrays, objects or a mix, as a filter value or a whole frame. */
const deepText = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":', '{"__proto__":'))
  .map(([depth, open]) => `${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`);

const validValues: Record<string, fc.Arbitrary<unknown>> = {
  suite_execution_id: fc.oneof(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 5 })),
  test_id: fc.string({ minLength: 1, maxLength: 20 }),
  event_type: fc.constantFrom('tool_call', 'llm_request', 'reasoning'),
  level: fc.oneof(fc.constantFrom('debug', 'error'), fc.constant(['error', 'critical'])),
  resource_type: fc.constantFrom('suite', 'test_execution'),
};

/** Valid subscribes (right keys and value types for the topic), with a polluting key now and then. */
const validFrame = fc
  .tuple(
    topics.filter((t) => describeTopic(t) !== undefined),
    fc.record(validValues, { requiredKeys: [] }),
    fc.oneof(
      { arbitrary: fc.constant(null), weight: 3 },
      { arbitrary: fc.constantFrom(...POLLUTERS), weight: 1 },
    ),
    fc.oneof(fc.string({ maxLength: 10 }), fc.integer()),
  )
  .map(([topic, values, polluter, id]) => {
    const allowed = describeTopic(topic)?.filterKeys as readonly string[];
    const entries: [string, string][] = Object.entries(values)
      .filter(([key]) => allowed.includes(key))
      .map(([key, value]) => [key, json(value)]);
    if (polluter !== null) entries.push([polluter, '1']);
    return objectText([
      ['type', '"subscribe"'],
      ['id', json(id)],
      [
        'payload',
        objectText([
          ['topic', json(topic)],
          ['filter', objectText(entries)],
        ]),
      ],
    ]);
  });

/** Well-formed-looking client frames, then broken in the ways attackers break them. */
const mutatedFrame = fc.oneof(
  validFrame,
  validFrame,
  fc
    .tuple(fc.constantFrom('subscribe', 'unsubscribe'), topics, fc.option(filterText), fc.option(scalar))
    .map(([type, topic, filter, id]) =>
      objectText([
        ['type', json(type)],
        ['id', json(id)],
        [
          'payload',
          objectText([
            ['topic', json(topic)],
            ...(filter === null ? [] : [['filter', filter] as [string, string]]),
          ]),
        ],
      ]),
    ),
  fc
    .tuple(
      fc.string({ maxLength: 70 }),
      hugeNumbers,
      hugeNumbers,
      fc.array(fc.tuple(topics, filterText), { maxLength: 5 }),
    )
    .map(([epoch, offset, sequence, subs]) =>
      objectText([
        ['type', '"resume"'],
        [
          'payload',
          objectText([
            ['epoch', json(epoch)],
            ['offset', json(offset)],
            ['sequence', json(sequence)],
            [
              'subscriptions',
              `[${subs
                .map(([t, f]) =>
                  objectText([
                    ['topic', json(t)],
                    ['filter', f],
                  ]),
                )
                .join(',')}]`,
            ],
          ]),
        ],
      ]),
    ),
  fc
    .tuple(fc.constantFrom(...CLIENT_MESSAGE_TYPES, ...POLLUTERS), fc.constantFrom(...POLLUTERS), deepText)
    .map(([type, key, deep]) =>
      objectText([
        ['type', json(type)],
        [key, deep],
        ['payload', objectText([[key, deep]])],
      ]),
    ),
  deepText,
  fc.jsonValue({ maxDepth: 6 }).map(json),
  fc.string({ unit: 'binary', maxLength: 200 }),
  // Truncations and byte flips of valid frames.
  fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 0xffff })).map(([cut, code]) => {
    const valid = '{"type":"subscribe","id":7,"payload":{"topic":"logs","filter":{"level":["error"]}}}';
    return valid.slice(0, cut) + String.fromCharCode(code) + valid.slice(cut + 1);
  }),
);

function assertPrototypeClean(): void {
  const probe = {} as Record<string, unknown>;
  for (const key of ['polluted', 'a', 'isAdmin', 'topic', 'filter', 'suite_execution_id']) {
    expect(probe[key], `Object.prototype.${key}`).toBeUndefined();
  }
  expect(Object.keys(Object.prototype)).toEqual([]);
}

/** What `matchesFilter` must answer: every key equal to the payload's own field (arrays: any of). */
function referenceMatch(payload: object, filter: Record<string, unknown>): boolean {
  return Object.keys(filter).every((key) => {
    const wanted = filter[key];
    if (wanted === undefined) return true;
    const actual = Object.hasOwn(payload, key) ? (payload as Record<string, unknown>)[key] : undefined;
    return Array.isArray(wanted) ? wanted.includes(actual) : actual === wanted;
  });
}

describe('hostile input: fuzzing the parser and the filter matcher', () => {
  it('parseClientMessage never throws, never pollutes a prototype, and answers a known error or a clean message', () => {
    let ok = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(mutatedFrame, mutatedFrame, fc.string({ maxLength: 100 })), (frame) => {
        const result = parseClientMessage(frame);
        if (result.ok) {
          ok += 1;
          expect(CLIENT_MESSAGE_TYPES).toContain(result.message.type);
          const message = result.message;
          const subscriptions =
            message.type === 'resume'
              ? message.payload.subscriptions
              : message.type === 'ping' || message.type === 'get_resource'
                ? []
                : [message.payload];
          for (const { topic, filter } of subscriptions) {
            const allowed = describeTopic(topic)?.filterKeys as readonly string[] | undefined;
            expect(allowed, `topic ${topic}`).toBeDefined();
            for (const key of Object.keys(filter ?? {})) expect(allowed).toContain(key);
            expect(Object.getPrototypeOf(filter ?? {})).toBe(Object.prototype);
          }
        } else {
          refused += 1;
          expect(ERROR_CODES).toContain(result.error.code);
          // An error names what was wrong without echoing a huge input back.
          expect(result.error.message.length).toBeLessThan(4096);
        }
        assertPrototypeClean();
      }),
      { numRuns: RUNS, seed: 9 },
    );
    figure('fuzz-parser', { runs: RUNS, accepted: ok, refused });
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });

  it('matchesFilter agrees with its definition, ignores inherited fields, and never throws', () => {
    const payloadText = fc
      .array(fc.tuple(fc.oneof(filterKeys, fc.string({ maxLength: 8 })), filterValue), { maxLength: 8 })
      .map((entries) => objectText(entries.map(([k, v]) => [k, json(v)])));
    let matched = 0;
    fc.assert(
      fc.property(payloadText, filterText, topics, (payloadJson, filterJson, topic) => {
        const payload = JSON.parse(payloadJson) as object;
        const filter = JSON.parse(filterJson) as Record<string, unknown>;
        // Raw, unvalidated filters: the matcher alone must hold up and follow its definition.
        const raw = matchesFilter(payload, filter as Filter);
        expect(raw).toBe(referenceMatch(payload, filter));
        if (raw) matched += 1;
        // Validated filters: only the topic's keys survive, so prototype keys never reach the matcher.
        if (describeTopic(topic)) {
          const checked = validateFilter(topic, filter);
          if (checked.ok) {
            for (const key of Object.keys(checked.filter)) expect(POLLUTERS).not.toContain(key);
            expect(matchesFilter(payload, checked.filter)).toBe(
              referenceMatch(payload, checked.filter as Record<string, unknown>),
            );
          }
        }
        assertPrototypeClean();
      }),
      { numRuns: RUNS, seed: 10 },
    );
    // Inherited fields never match: `{}` has a `constructor` and a `toString`, but not as its own.
    expect(matchesFilter({}, { constructor: Object } as unknown as Filter)).toBe(false);
    expect(matchesFilter({}, { toString: [Object.prototype.toString] } as unknown as Filter)).toBe(false);
    figure('fuzz-filter', { runs: RUNS, matched });
  });

  it('a real server answers every fuzzed frame with a reply and stays up', async () => {
    const hub = createATPWebSocketServer({
      port: 0,
      rateLimit: { messagesPerSecond: 1e6, burst: 1e6 },
      maxSubscriptions: 10_000,
    });
    disposer.add(() => hub.close());
    await hub.ready;
    const ws = new WebSocket(`ws://127.0.0.1:${hub.address()?.port}/api/ws/updates`);
    disposer.add(() => ws.terminate());
    const replies: { type: string; id?: unknown }[] = [];
    ws.on('message', (data) => replies.push(JSON.parse(String(data))));
    await new Promise((resolve) => ws.once('open', resolve));
    // Frames within the 64 KiB limit: bigger ones close with 1009, which the hostile-input test proves.
    const frames = fc
      .sample(mutatedFrame, { numRuns: 2000, seed: 11 })
      .filter((frame) => Buffer.byteLength(frame) < 64 * 1024);
    for (const frame of frames) ws.send(frame);
    const pingId = 'after-the-fuzz';
    ws.send(JSON.stringify({ type: 'ping', id: pingId }));
    const deadline = Date.now() + 30_000;
    while (!replies.some((r) => r.id === pingId) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    figure('fuzz-server', { frames: frames.length, replies: replies.length - 1 });
    expect(ws.readyState).toBe(WebSocket.OPEN);
    // One reply per frame (the greeting is the extra one, the final pong answers the ping); a resume
    // also gets one error per subscription it refuses, naming it in details, besides its answer.
    const perSubscription = replies.filter(
      (r) =>
        r.type === 'error' && (r as { payload?: { details?: { topic?: unknown } } }).payload?.details?.topic,
    );
    expect(replies.length - perSubscription.length).toBe(frames.length + 2);
    const known = ['connected', 'subscribed', 'unsubscribed', 'pong', 'resumed', 'error'];
    expect(replies.filter((r) => !known.includes(r.type))).toEqual([]);
    expect(
      replies.some(
        (r) =>
          r.type === 'error' && (r as { payload?: { code?: string } }).payload?.code === 'internal_error',
      ),
    ).toBe(false);
  });
});
