import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_MESSAGE_TYPES,
  ClientMessageSchema,
  describeTopic,
  ErrorCode,
  MessageIdSchema,
  type ParseResult,
  type ClientMessage,
  parseClientMessage,
  parseDataMessage,
} from '../index.js';

const errorCodes: readonly string[] = Object.values(ErrorCode);

/** What every result of parseClientMessage must look like, whatever the input. */
function expectWellFormed(result: ParseResult<ClientMessage>): void {
  // The result is sent back on the wire as is: it must serialise.
  expect(() => JSON.stringify(result)).not.toThrow();
  if (result.ok) {
    expect(ClientMessageSchema.safeParse(result.message).success).toBe(true);
    return;
  }
  expect(errorCodes).toContain(result.error.code);
  expect(typeof result.error.message).toBe('string');
  expect(result.error.message.length).toBeGreaterThan(0);
  if ('id' in result.error) expect(MessageIdSchema.safeParse(result.error.id).success).toBe(true);
}

// Keys that trip naive code (prototype members), the protocol's own keys, and anything.
const key = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'type',
    'id',
    'payload',
    'topic',
    'filter',
    'from',
    'epoch',
    'offset',
    'sequence',
    'subscriptions',
    'suite_execution_id',
    'test_id',
    'event_type',
    'level',
    'resource_type',
  ),
  fc.string({ maxLength: 6 }),
);

const scalarText = fc.oneof(
  fc.constantFrom('null', 'true', 'false', '0', '-0', '1e400', '-1', '1.5', '"start"', '""'),
  fc
    .constantFrom(...CLIENT_MESSAGE_TYPES, 'test:progress', 'events:*', 'events:', 'logs', 'info')
    .map((s) => JSON.stringify(s)),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.string({ unit: 'binary', maxLength: 8 }).map((s) => JSON.stringify(s)),
);

// JSON text built by hand, so that a "__proto__" key is an own key of the parsed object
// exactly as when it arrives on the wire (an object literal would set the prototype instead).
const { json } = fc.letrec<{ json: string; array: string; object: string }>((tie) => ({
  json: fc.oneof({ depthSize: 'small' }, scalarText, tie('array'), tie('object')),
  array: fc.array(tie('json'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  object: fc
    .array(fc.tuple(key, tie('json')), { maxLength: 5 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
}));

/** Frames that look like client messages, so that parsing gets past the first checks. */
const messageLike = fc
  .record({
    type: fc.oneof(
      fc.constantFrom(...CLIENT_MESSAGE_TYPES).map((t) => JSON.stringify(t)),
      scalarText,
    ),
    id: fc.option(fc.oneof(scalarText, json), { nil: undefined }),
    payload: fc.option(json, { nil: undefined }),
    extra: fc.option(fc.tuple(key, json), { nil: undefined }),
  })
  .map(({ type, id, payload, extra }) => {
    const parts = [`"type":${type}`];
    if (id !== undefined) parts.push(`"id":${id}`);
    if (payload !== undefined) parts.push(`"payload":${payload}`);
    if (extra !== undefined) parts.push(`${JSON.stringify(extra[0])}:${extra[1]}`);
    return `{${parts.join(',')}}`;
  });

/** Subscribe frames with random filters, where most of the filter logic is. */
const subscribeLike = fc
  .record({
    type: fc.constantFrom('subscribe', 'unsubscribe'),
    topic: fc.oneof(
      fc.constantFrom('test:progress', 'suite:completed', 'events:*', 'events:tool_call', 'logs', 'delta'),
      fc.string({ maxLength: 10 }),
    ),
    filter: json,
  })
  .map(
    ({ type, topic, filter }) =>
      `{"type":"${type}","payload":{"topic":${JSON.stringify(topic)},"filter":${filter}}}`,
  );

describe('parseClientMessage never throws and always answers with a known code', () => {
  it('on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => expectWellFormed(parseClientMessage(text))),
      { numRuns: 1000 },
    );
  });

  it('on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.json(), (text) => expectWellFormed(parseClientMessage(text))),
      { numRuns: 1000 },
    );
  });

  it('on JSON with __proto__, constructor and protocol keys', () => {
    fc.assert(
      fc.property(json, (text) => expectWellFormed(parseClientMessage(text))),
      { numRuns: 1000 },
    );
  });

  it('on message-shaped JSON', () => {
    fc.assert(
      fc.property(messageLike, (text) => expectWellFormed(parseClientMessage(text))),
      { numRuns: 2000 },
    );
  });

  it('on subscribe frames with arbitrary filters', () => {
    fc.assert(
      fc.property(subscribeLike, (text) => {
        const result = parseClientMessage(text);
        expectWellFormed(result);
        // An accepted filter keeps every key it was sent with, and each is one its topic has.
        if (result.ok && (result.message.type === 'subscribe' || result.message.type === 'unsubscribe')) {
          const { topic, filter } = result.message.payload;
          const keys = Object.keys(filter ?? {});
          expect(keys.sort()).toEqual(Object.keys(JSON.parse(text).payload.filter).sort());
          for (const name of keys) expect(describeTopic(topic)?.filterKeys).toContain(name);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('on a filter whose own __proto__ key came from the wire', () => {
    const text = '{"type":"subscribe","payload":{"topic":"logs","filter":{"__proto__":{"level":"info"}}}}';
    const result = parseClientMessage(text);
    expectWellFormed(result);
    expect(result).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidFilter } });
  });

  it.each([
    ['in the payload', (deep: string) => `{"type":"ping","payload":${deep}}`],
    [
      'in a filter value',
      (deep: string) => `{"type":"subscribe","payload":{"topic":"logs","filter":{"level":${deep}}}}`,
    ],
    ['in the id', (deep: string) => `{"type":"subscribe","id":${deep},"payload":{"topic":"logs"}}`],
    ['as the whole frame', (deep: string) => deep],
  ])('on deeply nested JSON %s', (_where, wrap) => {
    const depth = 100_000;
    for (const deep of [
      '['.repeat(depth) + ']'.repeat(depth),
      `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    ]) {
      const result = parseClientMessage(wrap(deep));
      expectWellFormed(result);
      expect(result.ok).toBe(false);
    }
  });
});

describe('parseDataMessage never throws', () => {
  it('on arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true, maxDepth: 4 }), (value) => {
        const result = parseDataMessage(value);
        if (!result.ok) expect(errorCodes).toContain(result.error.code);
      }),
      { numRuns: 1000 },
    );
  });

  it('on arbitrary JSON under a valid type', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('test_progress', 'log_entry', 'event', 'delta_update'),
        json,
        (type, payload) => {
          const result = parseDataMessage(JSON.parse(`{"type":"${type}","payload":${payload}}`));
          if (!result.ok) expect([ErrorCode.InvalidMessage]).toContain(result.error.code);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
