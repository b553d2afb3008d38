import { describe, expect, it } from 'vitest';
import {
  ALL_EVENTS_TOPIC,
  assertDataMessage,
  type DataMessage,
  type DataMessageType,
  describeTopic,
  isEventTypeName,
  matchesSubscription,
  TOPICS,
  topicsForMessage,
  validateFilter,
} from '../index.js';
import { guideDataExamples } from './guide-examples.js';

function guide(type: DataMessageType, changes: Record<string, unknown> = {}): DataMessage {
  const message = JSON.parse(guideDataExamples[type]) as { type: string; payload: Record<string, unknown> };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete message.payload[key];
    else message.payload[key] = value;
  }
  return assertDataMessage(message);
}

const llmRequest = guide('event', { event_type: 'llm_request', payload: { model: 'gpt-4' } });
const toolCall = guide('event');

// docs/PROTOCOL.md, "Topics and filters": topic, delivers, filter keys.
const specTopics: [string, DataMessageType, string[], string | undefined][] = [
  ['test:progress', 'test_progress', ['suite_execution_id', 'test_id'], undefined],
  ['test:completed', 'test_completed', ['suite_execution_id', 'test_id'], undefined],
  ['suite:progress', 'suite_progress', ['suite_execution_id'], undefined],
  ['suite:completed', 'suite_completed', ['suite_execution_id'], undefined],
  ['events:*', 'event', ['suite_execution_id', 'event_type'], undefined],
  ['events:tool_call', 'event', ['suite_execution_id'], 'tool_call'],
  ['events:llm_request', 'event', ['suite_execution_id'], 'llm_request'],
  ['events:llm_response', 'event', ['suite_execution_id'], 'llm_response'],
  ['events:reasoning', 'event', ['suite_execution_id'], 'reasoning'],
  ['events:error', 'event', ['suite_execution_id'], 'error'],
  ['events:progress', 'event', ['suite_execution_id'], 'progress'],
  ['logs', 'log_entry', ['suite_execution_id', 'level'], undefined],
  ['delta', 'delta_update', ['resource_type'], undefined],
];

describe('describeTopic', () => {
  it.each(specTopics)(
    'describes %s: delivers %s, filter keys %j',
    (topic, delivers, filterKeys, eventType) => {
      const definition = describeTopic(topic);
      expect(definition).toBeDefined();
      expect(definition?.topic).toBe(topic);
      expect(definition?.delivers).toBe(delivers);
      expect(definition?.filterKeys).toEqual(filterKeys);
      expect(definition?.eventType).toBe(eventType);
    },
  );

  it('knows exactly the fixed topics of the protocol', () => {
    const fixed = specTopics.filter(([, , , eventType]) => eventType === undefined).map(([topic]) => topic);
    expect(Object.keys(TOPICS).sort()).toEqual(fixed.sort());
  });

  it.each([
    'events:',
    'events:bad name',
    'events:tool_call ',
    `events:${'x'.repeat(65)}`,
    'events:a/b',
    'events',
    'event:tool_call',
    'test',
    'test:*',
    'suite:started',
    'log',
    'Logs',
    'deltas',
    '',
    '__proto__',
    'constructor',
    'toString',
  ])('does not know %j', (topic) => {
    expect(describeTopic(topic)).toBeUndefined();
  });

  it.each([
    ['tool_call', true],
    ['llm.request-v2', true],
    ['x'.repeat(64), true],
    ['', false],
    ['x'.repeat(65), false],
    ['bad name', false],
    ['*', false],
    ['tool:call', false],
  ])('isEventTypeName(%j) is %s', (name, valid) => {
    expect(isEventTypeName(name)).toBe(valid);
  });
});

describe('topicsForMessage', () => {
  it.each([
    ['test_progress', guide('test_progress'), ['test:progress']],
    ['test_completed', guide('test_completed'), ['test:completed']],
    ['suite_progress', guide('suite_progress'), ['suite:progress']],
    ['suite_completed', guide('suite_completed'), ['suite:completed']],
    ['log_entry', guide('log_entry'), ['logs']],
    ['a tool_call event', toolCall, ['events:*', 'events:tool_call']],
    ['an llm_request event', llmRequest, ['events:*', 'events:llm_request']],
    ['delta_update', guide('delta_update'), ['delta']],
  ])('puts %s on %j', (_what, message, topics) => {
    expect(topicsForMessage(message)).toEqual(topics);
  });

  it('gives only topics that describeTopic knows and that deliver the message type', () => {
    for (const message of [
      ...Object.keys(guideDataExamples).map((t) => guide(t as DataMessageType)),
      llmRequest,
    ]) {
      for (const topic of topicsForMessage(message)) {
        expect(describeTopic(topic)?.delivers).toBe(message.type);
      }
    }
  });
});

// [topic, filter, message, delivered?]
const deliveries: [string, Record<string, unknown> | undefined, DataMessage, boolean][] = [
  ['test:progress', undefined, guide('test_progress'), true],
  ['test:progress', { suite_execution_id: 123 }, guide('test_progress'), true],
  ['test:progress', { suite_execution_id: [1, 123] }, guide('test_progress'), true],
  ['test:progress', { suite_execution_id: 124 }, guide('test_progress'), false],
  ['test:progress', { test_id: 'test-001' }, guide('test_progress'), true],
  ['test:progress', { test_id: 'test-002' }, guide('test_progress'), false],
  ['test:progress', { suite_execution_id: 123, test_id: 'test-002' }, guide('test_progress'), false],
  ['test:progress', undefined, guide('test_completed'), false],
  ['test:completed', { suite_execution_id: 123, test_id: ['test-001'] }, guide('test_completed'), true],
  ['test:completed', { test_id: 'test-002' }, guide('test_completed'), false],
  ['test:completed', undefined, guide('test_progress'), false],
  ['suite:progress', { suite_execution_id: 123 }, guide('suite_progress'), true],
  ['suite:progress', { suite_execution_id: 9 }, guide('suite_progress'), false],
  ['suite:progress', undefined, guide('suite_completed'), false],
  ['suite:completed', { suite_execution_id: 123 }, guide('suite_completed'), true],
  ['suite:completed', { suite_execution_id: 9 }, guide('suite_completed'), false],
  ['suite:completed', undefined, guide('suite_progress'), false],
  ['events:*', undefined, toolCall, true],
  ['events:*', undefined, llmRequest, true],
  ['events:*', { event_type: 'tool_call' }, toolCall, true],
  ['events:*', { event_type: 'tool_call' }, llmRequest, false],
  ['events:*', { event_type: ['tool_call', 'llm_request'] }, llmRequest, true],
  ['events:*', { suite_execution_id: 123, event_type: 'llm_request' }, llmRequest, true],
  ['events:*', { suite_execution_id: 9 }, toolCall, false],
  ['events:*', undefined, guide('log_entry'), false],
  ['events:tool_call', undefined, toolCall, true],
  ['events:tool_call', undefined, llmRequest, false],
  ['events:tool_call', { suite_execution_id: 123 }, llmRequest, false],
  ['events:tool_call', { suite_execution_id: 123 }, toolCall, true],
  ['events:tool_call', { suite_execution_id: 9 }, toolCall, false],
  ['events:llm_request', undefined, llmRequest, true],
  ['events:llm_request', undefined, toolCall, false],
  ['events:llm_request', { suite_execution_id: [123] }, llmRequest, true],
  ['events:llm_response', undefined, llmRequest, false],
  ['events:reasoning', undefined, guide('event', { event_type: 'reasoning' }), true],
  ['events:error', undefined, guide('event', { event_type: 'error' }), true],
  ['events:error', undefined, guide('log_entry', { level: 'error' }), false],
  ['events:progress', undefined, guide('event', { event_type: 'progress' }), true],
  ['events:progress', undefined, guide('test_progress'), false],
  ['logs', undefined, guide('log_entry'), true],
  ['logs', { level: 'info' }, guide('log_entry'), true],
  ['logs', { level: ['warning', 'error'] }, guide('log_entry'), false],
  ['logs', { level: 'error', suite_execution_id: 123 }, guide('log_entry', { level: 'error' }), true],
  ['logs', { suite_execution_id: 123 }, guide('log_entry', { suite_execution_id: undefined }), false],
  ['logs', undefined, toolCall, false],
  ['delta', undefined, guide('delta_update'), true],
  ['delta', { resource_type: 'test_execution' }, guide('delta_update'), true],
  ['delta', { resource_type: 'suite_execution' }, guide('delta_update'), false],
  ['delta', undefined, guide('test_progress'), false],
  ['unknown_topic', undefined, guide('test_progress'), false],
  ['events:', undefined, toolCall, false],
];

describe('matchesSubscription', () => {
  const rows = deliveries.map(([topic, filter, message, delivered]) => ({
    topic,
    filter,
    message,
    delivered,
    what: `${JSON.stringify(filter ?? null)}, ${message.type}${message.type === 'event' ? ` ${message.payload.event_type}` : ''}`,
  }));

  it.each(rows)('$topic, $what: delivered $delivered', ({ topic, filter, message, delivered }) => {
    // Every filter of this table is one a client may send on that topic.
    if (describeTopic(topic)) expect(validateFilter(topic, filter)).toMatchObject({ ok: true });
    expect(matchesSubscription(message, filter ? { topic, filter } : { topic })).toBe(delivered);
    expect(matchesSubscription(message, { topic, filter: {} })).toBe(
      topicsForMessage(message).includes(topic),
    );
  });

  it('does not deliver an llm_request event to events:tool_call', () => {
    expect(matchesSubscription(llmRequest, { topic: 'events:tool_call' })).toBe(false);
    expect(matchesSubscription(llmRequest, { topic: ALL_EVENTS_TOPIC })).toBe(true);
  });

  it('covers every topic of the protocol', () => {
    const covered = new Set(deliveries.map(([topic]) => topic));
    for (const [topic] of specTopics) expect(covered).toContain(topic);
  });
});
