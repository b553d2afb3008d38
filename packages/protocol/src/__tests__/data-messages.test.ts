import { describe, expect, it } from 'vitest';
import {
  assertDataMessage,
  type DataMessageType,
  ErrorCode,
  MAX_COUNT,
  MAX_JSON_DEPTH,
  PublishRequestSchema,
  ProtocolError,
  parseClientMessage,
  parseDataMessage,
} from '../index.js';
import { guideDataExamples } from './guide-examples.js';

/** The documented example of `type` with some payload fields replaced (`undefined` removes a field). */
function example(type: DataMessageType, changes: Record<string, unknown> = {}): Record<string, unknown> {
  const message = JSON.parse(guideDataExamples[type]) as { type: string; payload: Record<string, unknown> };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete message.payload[key];
    else message.payload[key] = value;
  }
  return message;
}

const statuses =
  '"pending"|"queued"|"running"|"passed"|"failed"|"completed"|"error"|"timeout"|"cancelled"|"skipped"';
const suiteStatuses = '"pending"|"queued"|"running"|"completed"|"failed"|"error"|"cancelled"';
const levels = '"debug"|"info"|"warning"|"error"|"critical"';

// [what is wrong, message, path of the one issue, issue message]
const invalidPayloads: [string, Record<string, unknown>, string, string][] = [
  // wrong type of a field
  [
    'string progress_percent',
    example('test_progress', { progress_percent: '50' }),
    'payload.progress_percent',
    'Invalid input: expected number, received string',
  ],
  [
    'string success',
    example('test_completed', { success: 'yes' }),
    'payload.success',
    'Invalid input: expected boolean, received string',
  ],
  [
    'numeric test_id',
    example('test_progress', { test_id: 1 }),
    'payload.test_id',
    'Invalid input: expected string, received number',
  ],
  [
    'string suite_execution_id',
    example('suite_progress', { suite_execution_id: '123' }),
    'payload.suite_execution_id',
    'Invalid input: expected number, received string',
  ],
  [
    'array event payload',
    example('event', { payload: ['search'] }),
    'payload.payload',
    'Invalid input: expected record, received array',
  ],
  [
    'null changes',
    example('delta_update', { changes: null }),
    'payload.changes',
    'Invalid input: expected record, received null',
  ],
  // missing required field
  [
    'no test_id',
    example('test_progress', { test_id: undefined }),
    'payload.test_id',
    'Invalid input: expected string, received undefined',
  ],
  [
    'no success',
    example('test_completed', { success: undefined }),
    'payload.success',
    'Invalid input: expected boolean, received undefined',
  ],
  [
    'no success_rate',
    example('suite_completed', { success_rate: undefined }),
    'payload.success_rate',
    'Invalid input: expected number, received undefined',
  ],
  [
    'no timestamp',
    example('log_entry', { timestamp: undefined }),
    'payload.timestamp',
    'Invalid input: expected string, received undefined',
  ],
  [
    'no event_type',
    example('event', { event_type: undefined }),
    'payload.event_type',
    'Invalid input: expected string, received undefined',
  ],
  [
    'no changes',
    example('delta_update', { changes: undefined }),
    'payload.changes',
    'Invalid input: expected record, received undefined',
  ],
  // out of range
  [
    'progress_percent 101',
    example('test_progress', { progress_percent: 101 }),
    'payload.progress_percent',
    'Too big: expected number to be <=100',
  ],
  [
    'progress_percent -1',
    example('suite_progress', { progress_percent: -1 }),
    'payload.progress_percent',
    'Too small: expected number to be >=0',
  ],
  [
    'score 1.5',
    example('test_completed', { score: 1.5 }),
    'payload.score',
    'Too big: expected number to be <=1',
  ],
  [
    'success_rate -0.1',
    example('suite_completed', { success_rate: -0.1 }),
    'payload.success_rate',
    'Too small: expected number to be >=0',
  ],
  [
    'negative duration_seconds',
    example('test_completed', { duration_seconds: -1 }),
    'payload.duration_seconds',
    'Too small: expected number to be >=0',
  ],
  [
    'total_runs 0',
    example('test_progress', { current_run: 0, total_runs: 0 }),
    'payload.total_runs',
    'Too small: expected number to be >0',
  ],
  // negative ids
  [
    'negative suite_execution_id',
    example('test_progress', { suite_execution_id: -1 }),
    'payload.suite_execution_id',
    'Too small: expected number to be >=0',
  ],
  [
    'negative test_execution_id',
    example('log_entry', { test_execution_id: -456 }),
    'payload.test_execution_id',
    'Too small: expected number to be >=0',
  ],
  [
    'negative event sequence',
    example('event', { sequence: -15 }),
    'payload.sequence',
    'Too small: expected number to be >=0',
  ],
  // non-integer ids and counts
  [
    'fractional test_execution_id',
    example('test_completed', { test_execution_id: 456.5 }),
    'payload.test_execution_id',
    'Invalid input: expected int, received number',
  ],
  [
    'fractional suite_execution_id',
    example('suite_completed', { suite_execution_id: 1.25 }),
    'payload.suite_execution_id',
    'Invalid input: expected int, received number',
  ],
  [
    'fractional total_tests',
    example('suite_progress', { total_tests: 10.5 }),
    'payload.total_tests',
    'Invalid input: expected int, received number',
  ],
  [
    'fractional delta sequence',
    example('delta_update', { sequence: 42.1 }),
    'payload.sequence',
    'Invalid input: expected int, received number',
  ],
  // bad ISO timestamps
  [
    'timestamp with a space',
    example('log_entry', { timestamp: '2024-01-15 10:30:00Z' }),
    'payload.timestamp',
    'Invalid ISO datetime',
  ],
  [
    'timestamp without offset',
    example('log_entry', { timestamp: '2024-01-15T10:30:00' }),
    'payload.timestamp',
    'Invalid ISO datetime',
  ],
  [
    'date-only timestamp',
    example('event', { timestamp: '2024-01-15' }),
    'payload.timestamp',
    'Invalid ISO datetime',
  ],
  [
    'February 30th',
    example('event', { timestamp: '2024-02-30T10:30:05Z' }),
    'payload.timestamp',
    'Invalid ISO datetime',
  ],
  [
    'epoch-millisecond timestamp',
    example('log_entry', { timestamp: 1705314600000 }),
    'payload.timestamp',
    'Invalid input: expected string, received number',
  ],
  // unknown enum values
  [
    'unknown test status',
    example('test_progress', { status: 'runing' }),
    'payload.status',
    `Invalid option: expected one of ${statuses}`,
  ],
  [
    'unknown suite status',
    example('suite_progress', { status: 'passed' }),
    'payload.status',
    `Invalid option: expected one of ${suiteStatuses}`,
  ],
  [
    'unknown log level',
    example('log_entry', { level: 'verbose' }),
    'payload.level',
    `Invalid option: expected one of ${levels}`,
  ],
  [
    'event_type with a space',
    example('event', { event_type: 'tool call' }),
    'payload.event_type',
    'letters, digits, "_", "." or "-", 1 to 64 characters',
  ],
  [
    'empty resource_type',
    example('delta_update', { resource_type: '' }),
    'payload.resource_type',
    'letters, digits, "_", "." or "-", 1 to 64 characters',
  ],
  // unknown extra fields
  [
    'extra field in test_progress',
    example('test_progress', { progress: 50 }),
    'payload',
    'Unrecognized key: "progress"',
  ],
  [
    'extra field in suite_completed',
    example('suite_completed', { success_ratio: 0.9 }),
    'payload',
    'Unrecognized key: "success_ratio"',
  ],
  ['extra field in log_entry', example('log_entry', { lvl: 'info' }), 'payload', 'Unrecognized key: "lvl"'],
  [
    'sequence on a published message',
    { ...example('delta_update'), sequence: 7 },
    '(root)',
    'Unrecognized key: "sequence"',
  ],
  // cross-field rules
  [
    'current_run > total_runs',
    example('test_progress', { current_run: 6, total_runs: 5 }),
    'payload.current_run',
    'current_run must not exceed total_runs',
  ],
  [
    'completed_tests > total_tests',
    example('suite_progress', { completed_tests: 11, total_tests: 10, passed_tests: 0, failed_tests: 0 }),
    'payload.completed_tests',
    'completed_tests must not exceed total_tests',
  ],
  [
    'passed + failed > completed_tests',
    example('suite_progress', { completed_tests: 4, passed_tests: 4, failed_tests: 1 }),
    'payload.passed_tests',
    'passed_tests + failed_tests must not exceed completed_tests',
  ],
  [
    'passed + failed > total_tests',
    example('suite_completed', { total_tests: 10, passed_tests: 10, failed_tests: 1 }),
    'payload.passed_tests',
    'passed_tests + failed_tests must not exceed total_tests',
  ],
];

describe('parseDataMessage', () => {
  it.each(invalidPayloads)(
    'refuses %s with invalid_message naming the field',
    (_what, message, path, issue) => {
      const result = parseDataMessage(message);
      expect(result).toEqual({
        ok: false,
        error: {
          code: ErrorCode.InvalidMessage,
          message: `invalid '${message.type}' message: ${path}: ${issue}`,
          issues: [{ path, message: issue }],
        },
      });
    },
  );

  it.each([
    ['current_run equal to total_runs', example('test_progress', { current_run: 5, total_runs: 5 })],
    ['current_run without total_runs', example('test_progress', { total_runs: undefined, current_run: 99 })],
    ['a null score', example('test_completed', { score: null })],
    [
      'a timestamp with an offset and fractions',
      example('log_entry', { timestamp: '2024-01-15T10:30:00.123+02:00' }),
    ],
    [
      'a log entry without ids',
      example('log_entry', { suite_execution_id: undefined, test_execution_id: undefined }),
    ],
    ['a string resource_id', example('delta_update', { resource_id: 'exec-456' })],
    ['an event type such as llm.request-v2', example('event', { event_type: 'llm.request-v2' })],
    [
      'progress_percent at both ends',
      example('suite_progress', { progress_percent: 100, completed_tests: 10 }),
    ],
  ])('accepts %s', (_what, message) => {
    expect(parseDataMessage(message)).toEqual({ ok: true, message });
  });

  it('lists at most five issues in the message and all of them in issues', () => {
    const result = parseDataMessage({
      type: 'test_progress',
      payload: {
        suite_execution_id: -1,
        test_execution_id: -1,
        test_id: '',
        status: 'x',
        progress_percent: 200,
        extra: 1,
      },
    });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error.issues).toHaveLength(6);
    expect(result.error.message).toMatch(/; and 1 more$/);
    expect(result.error.message.split('; ')).toHaveLength(6);
  });

  it.each([
    [
      'an unknown type',
      { type: 'test_started', payload: {} },
      ErrorCode.UnknownType,
      'unknown data message type "test_started"; expected one of test_progress, test_completed, suite_progress, suite_completed, log_entry, event, delta_update',
    ],
    [
      'a client message type',
      { type: 'subscribe', payload: { topic: 'logs' } },
      ErrorCode.UnknownType,
      'unknown data message type "subscribe"; expected one of test_progress, test_completed, suite_progress, suite_completed, log_entry, event, delta_update',
    ],
    [
      'no type',
      { payload: {} },
      ErrorCode.UnknownType,
      'unknown data message type undefined; expected one of test_progress, test_completed, suite_progress, suite_completed, log_entry, event, delta_update',
    ],
    [
      'an array',
      [example('log_entry')],
      ErrorCode.InvalidMessage,
      'a data message must be an object { type, payload }',
    ],
    ['null', null, ErrorCode.InvalidMessage, 'a data message must be an object { type, payload }'],
    [
      'a string',
      'test_progress',
      ErrorCode.InvalidMessage,
      'a data message must be an object { type, payload }',
    ],
  ])('refuses %s', (_what, value, code, message) => {
    expect(parseDataMessage(value)).toEqual({ ok: false, error: { code, message } });
  });

  it('refuses a message without payload', () => {
    const result = parseDataMessage({ type: 'log_entry' });
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: ErrorCode.InvalidMessage,
        message: "invalid 'log_entry' message: payload: Invalid input: expected object, received undefined",
      },
    });
  });
});

describe('assertDataMessage', () => {
  it('throws a ProtocolError with the code, the message and the issues', () => {
    let thrown: unknown;
    try {
      assertDataMessage(example('test_progress', { progress_percent: 101 }));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ProtocolError);
    expect(thrown).toMatchObject({
      name: 'ProtocolError',
      code: ErrorCode.InvalidMessage,
      message:
        "invalid 'test_progress' message: payload.progress_percent: Too big: expected number to be <=100",
      issues: [{ path: 'payload.progress_percent', message: 'Too big: expected number to be <=100' }],
    });
  });

  it('returns a copy, so later changes to the input do not reach the validated message', () => {
    const input = example('delta_update');
    const message = assertDataMessage(input);
    (input.payload as Record<string, unknown>).resource_id = 999;
    expect(message.payload).toMatchObject({ resource_id: 456 });
  });
});

describe('PublishRequestSchema', () => {
  it('accepts one data message or a non-empty array of them', () => {
    expect(PublishRequestSchema.safeParse(example('log_entry')).success).toBe(true);
    expect(PublishRequestSchema.safeParse([example('log_entry'), example('event')]).success).toBe(true);
  });

  it('refuses an empty array and an array with one invalid message', () => {
    expect(PublishRequestSchema.safeParse([]).success).toBe(false);
    expect(
      PublishRequestSchema.safeParse([example('log_entry'), example('event', { timestamp: 'now' })]).success,
    ).toBe(false);
  });
});

describe('free-form JSON and counters stay within safe bounds', () => {
  function nested(depth: number): Record<string, unknown> {
    let value: Record<string, unknown> = { leaf: true };
    for (let i = 1; i < depth; i++) value = { deeper: value };
    return value;
  }
  const event = (payload: Record<string, unknown>) => ({
    type: 'event',
    payload: { suite_execution_id: 1, event_type: 'tool_call', timestamp: '2024-01-15T10:30:05Z', payload },
  });

  it('accepts an event payload nested MAX_JSON_DEPTH levels and refuses one level more, however deep', () => {
    expect(parseDataMessage(event(nested(MAX_JSON_DEPTH))).ok).toBe(true);
    for (const depth of [MAX_JSON_DEPTH + 1, 10_000, 200_000]) {
      const result = parseDataMessage(event(nested(depth)));
      expect(result).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
    }
  });

  it('refuses a delta whose changes nest too deep', () => {
    const result = parseDataMessage({
      type: 'delta_update',
      payload: { resource_type: 'test', resource_id: 1, sequence: 1, changes: nested(MAX_JSON_DEPTH + 1) },
    });
    expect(result.ok).toBe(false);
  });

  it('refuses a resume whose sequence or offset is past MAX_COUNT', () => {
    for (const payload of [
      { epoch: 'e', offset: 0, sequence: Number.MAX_SAFE_INTEGER - 1, subscriptions: [] },
      { epoch: 'e', offset: MAX_COUNT + 1, sequence: 0, subscriptions: [] },
    ]) {
      const result = parseClientMessage(JSON.stringify({ type: 'resume', payload }));
      expect(result).toMatchObject({ ok: false, error: { code: 'invalid_message' } });
    }
    const ok = parseClientMessage(
      JSON.stringify({
        type: 'resume',
        payload: { epoch: 'e', offset: 0, sequence: MAX_COUNT, subscriptions: [] },
      }),
    );
    expect(ok.ok).toBe(true);
  });
});
