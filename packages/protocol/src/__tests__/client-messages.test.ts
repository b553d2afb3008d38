import { describe, expect, it } from 'vitest';
import { type ClientMessage, ErrorCode, MAX_RESUME_SUBSCRIPTIONS, parseClientMessage } from '../index.js';

const TOPIC_LIST =
  'topics: test:progress, test:completed, suite:progress, suite:completed, events:*, events:<event_type>, logs, delta';
const NOT_AN_OBJECT = 'a message must be a JSON object { "type": string, "payload": object }';

function frame(value: unknown): string {
  return JSON.stringify(value);
}

function subscribe(topic: string, filter?: unknown, extra: Record<string, unknown> = {}): string {
  return frame({
    type: 'subscribe',
    ...extra,
    payload: filter === undefined ? { topic } : { topic, filter },
  });
}

function parsed(text: string): ClientMessage {
  const result = parseClientMessage(text);
  if (!result.ok) throw new Error(`expected ${text} to parse, got ${JSON.stringify(result.error)}`);
  return result.message;
}

// [what is wrong, frame, code, message]
const refused: [string, string, ErrorCode, string][] = [
  // frames that are not messages
  ['invalid JSON', '{"type": "ping"', ErrorCode.InvalidJson, 'frame is not valid JSON: '],
  ['an empty frame', '', ErrorCode.InvalidJson, 'frame is not valid JSON: '],
  ['a JSON array', '[{"type":"ping"}]', ErrorCode.InvalidMessage, NOT_AN_OBJECT],
  ['a JSON string', '"ping"', ErrorCode.InvalidMessage, NOT_AN_OBJECT],
  ['a JSON number', '42', ErrorCode.InvalidMessage, NOT_AN_OBJECT],
  ['JSON null', 'null', ErrorCode.InvalidMessage, NOT_AN_OBJECT],
  ['no type', frame({ payload: {} }), ErrorCode.InvalidMessage, 'message has no string "type"'],
  [
    'a numeric type',
    frame({ type: 1, payload: {} }),
    ErrorCode.InvalidMessage,
    'message has no string "type"',
  ],
  // unknown type
  [
    'an unknown type',
    frame({ type: 'subscribe_all', payload: {} }),
    ErrorCode.UnknownType,
    "unknown message type 'subscribe_all'; a client may send: subscribe, unsubscribe, ping, resume, get_resource",
  ],
  [
    'a server message type',
    frame({ type: 'pong', payload: {} }),
    ErrorCode.UnknownType,
    "unknown message type 'pong'; a client may send: subscribe, unsubscribe, ping, resume, get_resource",
  ],
  [
    'a data message type',
    frame({ type: 'test_progress', payload: {} }),
    ErrorCode.UnknownType,
    "unknown message type 'test_progress'; a client may send: subscribe, unsubscribe, ping, resume, get_resource",
  ],
  [
    'a type of another case',
    frame({ type: 'Subscribe', payload: { topic: 'logs' } }),
    ErrorCode.UnknownType,
    "unknown message type 'Subscribe'; a client may send: subscribe, unsubscribe, ping, resume, get_resource",
  ],
  // schema failures
  [
    'a subscribe without payload',
    frame({ type: 'subscribe' }),
    ErrorCode.InvalidMessage,
    "invalid 'subscribe' message: payload: Invalid input: expected object, received undefined",
  ],
  [
    'a numeric topic',
    frame({ type: 'subscribe', payload: { topic: 7 } }),
    ErrorCode.InvalidMessage,
    "invalid 'subscribe' message: payload.topic: Invalid input: expected string, received number",
  ],
  [
    'an empty topic',
    subscribe(''),
    ErrorCode.InvalidMessage,
    "invalid 'subscribe' message: payload.topic: Too small: expected string to have >=1 characters",
  ],
  [
    'an unknown field in the payload',
    frame({ type: 'subscribe', payload: { topic: 'logs', filters: { level: 'info' } } }),
    ErrorCode.InvalidMessage,
    'invalid \'subscribe\' message: payload: Unrecognized key: "filters"',
  ],
  [
    'an unknown top-level field',
    frame({ type: 'ping', ref: 1 }),
    ErrorCode.InvalidMessage,
    'invalid \'ping\' message: (root): Unrecognized key: "ref"',
  ],
  [
    'a filter that is an array',
    subscribe('logs', ['info']),
    ErrorCode.InvalidMessage,
    "invalid 'subscribe' message: payload.filter: Invalid input: expected record, received array",
  ],
  [
    'a filter that is a string',
    subscribe('logs', 'level=info'),
    ErrorCode.InvalidMessage,
    "invalid 'subscribe' message: payload.filter: Invalid input: expected record, received string",
  ],
  [
    'a bad from',
    frame({ type: 'subscribe', payload: { topic: 'logs', from: 'end' } }),
    ErrorCode.InvalidMessage,
    "invalid 'subscribe' message: payload.from: Invalid input",
  ],
  // unknown topics
  [
    'an unknown topic',
    subscribe('unknown_topic'),
    ErrorCode.UnknownTopic,
    `unknown topic 'unknown_topic'; ${TOPIC_LIST}`,
  ],
  [
    'a topic of another case',
    subscribe('Logs'),
    ErrorCode.UnknownTopic,
    `unknown topic 'Logs'; ${TOPIC_LIST}`,
  ],
  [
    'events without a colon',
    subscribe('events'),
    ErrorCode.UnknownTopic,
    `unknown topic 'events'; ${TOPIC_LIST}`,
  ],
  [
    'events: with no name',
    subscribe('events:'),
    ErrorCode.UnknownTopic,
    `unknown topic 'events:'; ${TOPIC_LIST}`,
  ],
  [
    'events: with a space in the name',
    subscribe('events:bad name'),
    ErrorCode.UnknownTopic,
    `unknown topic 'events:bad name'; ${TOPIC_LIST}`,
  ],
  [
    'events: with a 65-character name',
    subscribe(`events:${'a'.repeat(65)}`),
    ErrorCode.UnknownTopic,
    `unknown topic 'events:${'a'.repeat(65)}'; ${TOPIC_LIST}`,
  ],
  [
    'a topic named like an Object.prototype member',
    subscribe('constructor'),
    ErrorCode.UnknownTopic,
    `unknown topic 'constructor'; ${TOPIC_LIST}`,
  ],
  [
    'an unsubscribe from an unknown topic',
    frame({ type: 'unsubscribe', payload: { topic: 'test:started' } }),
    ErrorCode.UnknownTopic,
    `unknown topic 'test:started'; ${TOPIC_LIST}`,
  ],
  // filter keys
  [
    'suite_id on test:progress',
    subscribe('test:progress', { suite_id: 123 }),
    ErrorCode.InvalidFilter,
    "filter key 'suite_id' is not allowed on topic 'test:progress'; allowed: suite_execution_id, test_id",
  ],
  [
    'test_id on suite:progress',
    subscribe('suite:progress', { test_id: 'test-001' }),
    ErrorCode.InvalidFilter,
    "filter key 'test_id' is not allowed on topic 'suite:progress'; allowed: suite_execution_id",
  ],
  [
    'event_type on events:tool_call',
    subscribe('events:tool_call', { event_type: 'tool_call' }),
    ErrorCode.InvalidFilter,
    "filter key 'event_type' is not allowed on topic 'events:tool_call'; allowed: suite_execution_id",
  ],
  [
    'suite_execution_id on delta',
    subscribe('delta', { suite_execution_id: 1 }),
    ErrorCode.InvalidFilter,
    "filter key 'suite_execution_id' is not allowed on topic 'delta'; allowed: resource_type",
  ],
  [
    'a __proto__ filter key',
    '{"type":"subscribe","payload":{"topic":"test:progress","filter":{"__proto__":{"suite_execution_id":1}}}}',
    ErrorCode.InvalidFilter,
    "filter key '__proto__' is not allowed on topic 'test:progress'; allowed: suite_execution_id, test_id",
  ],
  [
    'a constructor filter key',
    subscribe('logs', { constructor: 'x' }),
    ErrorCode.InvalidFilter,
    "filter key 'constructor' is not allowed on topic 'logs'; allowed: suite_execution_id, level",
  ],
  // filter values
  [
    'a string suite_execution_id',
    subscribe('test:progress', { suite_execution_id: '123' }),
    ErrorCode.InvalidFilter,
    'filter \'suite_execution_id\' must be a non-negative integer (or an array of them), got "123"',
  ],
  [
    'a negative suite_execution_id',
    subscribe('suite:completed', { suite_execution_id: -1 }),
    ErrorCode.InvalidFilter,
    "filter 'suite_execution_id' must be a non-negative integer (or an array of them), got -1",
  ],
  [
    'a fractional suite_execution_id in an array',
    subscribe('suite:progress', { suite_execution_id: [1, 2.5] }),
    ErrorCode.InvalidFilter,
    "filter 'suite_execution_id' must be a non-negative integer (or an array of them), got 2.5",
  ],
  [
    'level verbose',
    subscribe('logs', { level: 'verbose' }),
    ErrorCode.InvalidFilter,
    'filter \'level\' must be one of debug, info, warning, error, critical (or an array of them), got "verbose"',
  ],
  [
    'an empty array',
    subscribe('logs', { level: [] }),
    ErrorCode.InvalidFilter,
    "filter 'level' must not be an empty array",
  ],
  [
    'a null test_id',
    subscribe('test:completed', { test_id: null }),
    ErrorCode.InvalidFilter,
    "filter 'test_id' must be a non-empty string (or an array of them), got null",
  ],
  [
    'a nested array',
    subscribe('test:completed', { test_id: [['a']] }),
    ErrorCode.InvalidFilter,
    "filter 'test_id' must be a non-empty string (or an array of them), got an array",
  ],
  [
    'an object resource_type',
    subscribe('delta', { resource_type: { eq: 'test_execution' } }),
    ErrorCode.InvalidFilter,
    'filter \'resource_type\' must be a name of 1 to 64 letters, digits, "_", "." or "-" (or an array of them), got a object',
  ],
  [
    'an event_type with a space',
    subscribe('events:*', { event_type: 'tool call' }),
    ErrorCode.InvalidFilter,
    'filter \'event_type\' must be a name of 1 to 64 letters, digits, "_", "." or "-" (or an array of them), got "tool call"',
  ],
  [
    'an array of 101 values',
    subscribe('test:progress', { suite_execution_id: Array.from({ length: 101 }, (_, i) => i) }),
    ErrorCode.InvalidFilter,
    "filter 'suite_execution_id' lists more than 100 values",
  ],
  [
    'a bad filter in an unsubscribe',
    frame({ type: 'unsubscribe', payload: { topic: 'logs', filter: { level: 'verbose' } } }),
    ErrorCode.InvalidFilter,
    'filter \'level\' must be one of debug, info, warning, error, critical (or an array of them), got "verbose"',
  ],
  // ping
  [
    'a ping with a non-empty payload',
    frame({ type: 'ping', payload: { t: 1 } }),
    ErrorCode.InvalidMessage,
    'invalid \'ping\' message: payload: Unrecognized key: "t"',
  ],
  [
    'a ping with a null payload',
    frame({ type: 'ping', payload: null }),
    ErrorCode.InvalidMessage,
    "invalid 'ping' message: payload: Invalid input: expected object, received null",
  ],
];

describe('parseClientMessage refuses bad input with the code and a message naming the problem', () => {
  it.each(refused)('%s', (_what, text, code, message) => {
    const result = parseClientMessage(text);
    if (result.ok) throw new Error(`expected ${text} to be refused, got ${JSON.stringify(result.message)}`);
    expect(result.error.code).toBe(code);
    if (code === ErrorCode.InvalidJson) expect(result.error.message.startsWith(message)).toBe(true);
    else expect(result.error.message).toBe(message);
    expect(result.error).not.toHaveProperty('id');
  });
});

describe('the id of a refused message', () => {
  it.each([
    ['unknown_type', frame({ type: 'frobnicate', id: 'r1', payload: {} }), ErrorCode.UnknownType, 'r1'],
    [
      'invalid_message',
      frame({ type: 'subscribe', id: 7, payload: { topic: 1 } }),
      ErrorCode.InvalidMessage,
      7,
    ],
    ['unknown_topic', subscribe('unknown_topic', undefined, { id: 'abc' }), ErrorCode.UnknownTopic, 'abc'],
    ['invalid_filter', subscribe('logs', { level: 'verbose' }, { id: 0 }), ErrorCode.InvalidFilter, 0],
    [
      'invalid_message on ping',
      frame({ type: 'ping', id: -1.5, payload: { x: 1 } }),
      ErrorCode.InvalidMessage,
      -1.5,
    ],
    ['no type', frame({ id: 'x1' }), ErrorCode.InvalidMessage, 'x1'],
  ])('is echoed in the %s error', (_what, text, code, id) => {
    const result = parseClientMessage(text);
    expect(result).toMatchObject({ ok: false, error: { code, id } });
  });

  it('is echoed in the invalid_filter refusal of one subscription of a resume', () => {
    const text = frame({
      type: 'resume',
      id: 'resume-1',
      payload: {
        epoch: 'e',
        offset: 0,
        sequence: 0,
        subscriptions: [{ topic: 'logs', filter: { lvl: 'info' } }],
      },
    });
    expect(parseClientMessage(text)).toMatchObject({
      ok: true,
      refused: [{ topic: 'logs', error: { code: ErrorCode.InvalidFilter, id: 'resume-1' } }],
    });
  });

  it.each([
    ['an object', { n: 1 }],
    ['a boolean', true],
    ['null', null],
    ['a 129-character string', 'x'.repeat(129)],
  ])('is left out when it is %s, which is not a valid id', (_what, id) => {
    const result = parseClientMessage(frame({ type: 'frobnicate', id, payload: {} }));
    if (result.ok) throw new Error('expected an error');
    expect(result.error.code).toBe(ErrorCode.UnknownType);
    expect(result.error).not.toHaveProperty('id');
  });

  it('is kept on a valid message', () => {
    expect(parsed(frame({ type: 'ping', id: 'p-1' }))).toEqual({ type: 'ping', id: 'p-1' });
    expect(parsed(subscribe('logs', undefined, { id: 3 }))).toMatchObject({ id: 3 });
  });

  it('makes an otherwise valid message invalid when it is not a string or number', () => {
    const result = parseClientMessage(frame({ type: 'ping', id: { n: 1 } }));
    expect(result).toMatchObject({
      ok: false,
      error: { code: ErrorCode.InvalidMessage, message: "invalid 'ping' message: id: Invalid input" },
    });
  });
});

describe('parseClientMessage accepts', () => {
  it('a ping without payload and with an empty one', () => {
    expect(parsed('{"type":"ping"}')).toEqual({ type: 'ping' });
    expect(parsed('{"type":"ping","payload":{}}')).toEqual({ type: 'ping', payload: {} });
  });

  it('a subscribe without filter, giving the normalised empty filter', () => {
    expect(parsed(subscribe('logs'))).toEqual({ type: 'subscribe', payload: { topic: 'logs', filter: {} } });
  });

  it('a subscribe with a filter, normalising its keys and arrays', () => {
    const message = parsed(subscribe('test:progress', { test_id: ['b', 'a', 'b'], suite_execution_id: [5] }));
    expect(message).toEqual({
      type: 'subscribe',
      payload: { topic: 'test:progress', filter: { suite_execution_id: 5, test_id: ['a', 'b'] } },
    });
    if (message.type !== 'subscribe') throw new Error('not a subscribe');
    expect(Object.keys(message.payload.filter ?? {})).toEqual(['suite_execution_id', 'test_id']);
  });

  it.each([
    ['start', 'start'],
    ['a position', { epoch: 'e-7', offset: 42 }],
  ])('a subscribe with from: %s', (_what, from) => {
    expect(parsed(frame({ type: 'subscribe', payload: { topic: 'logs', from } }))).toEqual({
      type: 'subscribe',
      payload: { topic: 'logs', from, filter: {} },
    });
  });

  it('an unsubscribe without filter, keeping it absent (it removes every subscription to the topic)', () => {
    expect(parsed(frame({ type: 'unsubscribe', payload: { topic: 'logs' } }))).toEqual({
      type: 'unsubscribe',
      payload: { topic: 'logs' },
    });
  });

  it('an unsubscribe with a filter, normalised (it removes only that subscription)', () => {
    expect(
      parsed(frame({ type: 'unsubscribe', payload: { topic: 'logs', filter: { level: ['info'] } } })),
    ).toEqual({ type: 'unsubscribe', payload: { topic: 'logs', filter: { level: 'info' } } });
  });

  it.each([
    'events:*',
    'events:tool_call',
    'events:llm_request',
    'events:llm_response',
    'events:reasoning',
    'events:error',
    'events:progress',
    'events:custom.kind-2',
    `events:${'a'.repeat(64)}`,
  ])('a subscribe to %s', (topic) => {
    expect(parsed(subscribe(topic, { suite_execution_id: 1 }))).toMatchObject({ payload: { topic } });
  });
});

describe('resume', () => {
  const resume = (payload: unknown, id?: string) =>
    frame({ type: 'resume', ...(id === undefined ? {} : { id }), payload });

  it('is accepted with its subscriptions, whose filters come back normalised', () => {
    const message = parsed(
      resume({
        epoch: 'ep-1',
        offset: 120,
        sequence: 57,
        subscriptions: [
          { topic: 'test:progress', filter: { suite_execution_id: [123] } },
          { topic: 'logs', filter: { level: ['warning', 'error', 'warning'] } },
          { topic: 'events:tool_call' },
        ],
      }),
    );
    expect(message).toEqual({
      type: 'resume',
      payload: {
        epoch: 'ep-1',
        offset: 120,
        sequence: 57,
        subscriptions: [
          { topic: 'test:progress', filter: { suite_execution_id: 123 } },
          { topic: 'logs', filter: { level: ['error', 'warning'] } },
          { topic: 'events:tool_call', filter: {} },
        ],
      },
    });
  });

  it('is accepted with no subscriptions and sequence 0 (a client that received nothing yet)', () => {
    expect(parsed(resume({ epoch: 'e', offset: 0, sequence: 0, subscriptions: [] }))).toMatchObject({
      type: 'resume',
    });
  });

  it.each([
    [
      'no epoch',
      { offset: 0, sequence: 0, subscriptions: [] },
      ErrorCode.InvalidMessage,
      "invalid 'resume' message: payload.epoch: Invalid input: expected string, received undefined",
    ],
    [
      'an empty epoch',
      { epoch: '', offset: 0, sequence: 0, subscriptions: [] },
      ErrorCode.InvalidMessage,
      "invalid 'resume' message: payload.epoch: Too small: expected string to have >=1 characters",
    ],
    [
      'a negative offset',
      { epoch: 'e', offset: -1, sequence: 0, subscriptions: [] },
      ErrorCode.InvalidMessage,
      "invalid 'resume' message: payload.offset: Too small: expected number to be >=0",
    ],
    [
      'a fractional sequence',
      { epoch: 'e', offset: 0, sequence: 1.5, subscriptions: [] },
      ErrorCode.InvalidMessage,
      "invalid 'resume' message: payload.sequence: Invalid input: expected int, received number",
    ],
    [
      'no subscriptions',
      { epoch: 'e', offset: 0, sequence: 0 },
      ErrorCode.InvalidMessage,
      "invalid 'resume' message: payload.subscriptions: Invalid input: expected array, received undefined",
    ],
    [
      'a from in a subscription',
      { epoch: 'e', offset: 0, sequence: 0, subscriptions: [{ topic: 'logs', from: 'start' }] },
      ErrorCode.InvalidMessage,
      'invalid \'resume\' message: payload.subscriptions.0: Unrecognized key: "from"',
    ],
    [
      'too many subscriptions',
      {
        epoch: 'e',
        offset: 0,
        sequence: 0,
        subscriptions: Array.from({ length: MAX_RESUME_SUBSCRIPTIONS + 1 }, () => ({ topic: 'logs' })),
      },
      ErrorCode.InvalidMessage,
      `invalid 'resume' message: payload.subscriptions: Too big: expected array to have <=${MAX_RESUME_SUBSCRIPTIONS} items`,
    ],
  ])('is refused with %s', (_what, payload, code, message) => {
    const result = parseClientMessage(resume(payload, 'r'));
    expect(result).toEqual({ ok: false, error: expect.objectContaining({ code, message, id: 'r' }) });
  });

  // One invalid subscription does not spoil a resume: it is taken out and refused on its own.
  it.each([
    [
      'an unknown topic in a subscription',
      { epoch: 'e', offset: 0, sequence: 0, subscriptions: [{ topic: 'logs' }, { topic: 'events:' }] },
      ErrorCode.UnknownTopic,
      `unknown topic 'events:'; ${TOPIC_LIST}`,
    ],
    [
      'a bad filter in a subscription',
      {
        epoch: 'e',
        offset: 0,
        sequence: 0,
        subscriptions: [{ topic: 'delta', filter: { resource_type: '' } }],
      },
      ErrorCode.InvalidFilter,
      'filter \'resource_type\' must be a name of 1 to 64 letters, digits, "_", "." or "-" (or an array of them), got ""',
    ],
    [
      'a __proto__ filter key in a subscription',
      {
        epoch: 'e',
        offset: 0,
        sequence: 0,
        subscriptions: [
          { topic: 'logs' },
          { topic: 'logs', filter: JSON.parse('{"__proto__":{"level":"info"}}') },
        ],
      },
      ErrorCode.InvalidFilter,
      "filter key '__proto__' is not allowed on topic 'logs'; allowed: suite_execution_id, level",
    ],
  ])('takes out and refuses alone %s', (_what, payload, code, message) => {
    const result = parseClientMessage(resume(payload, 'r'));
    // The invalid subscription is the last one of each case.
    const subscriptions = (payload as { subscriptions: Array<{ topic: string }> }).subscriptions;
    expect(result).toMatchObject({
      ok: true,
      message: { payload: { subscriptions: subscriptions.slice(0, -1) } },
      refused: [{ topic: subscriptions.at(-1)?.topic, error: { code, message, id: 'r' } }],
    });
  });
});
