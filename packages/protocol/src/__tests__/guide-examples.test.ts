import { describe, expect, it } from 'vitest';
import {
  assertDataMessage,
  DATA_MESSAGE_TYPES,
  DataMessageSchema,
  DeliveredDataMessageSchema,
  matchesSubscription,
  parseClientMessage,
  parseDataMessage,
  topicsForMessage,
} from '../index.js';
import { guideDataExamples, guideSubscribeExample } from './guide-examples.js';

const dataExamples = Object.entries(guideDataExamples);

describe('the JSON examples of docs/GUIDE.md', () => {
  it('cover every data message type of the protocol', () => {
    expect(Object.keys(guideDataExamples)).toEqual([...DATA_MESSAGE_TYPES]);
  });

  it('parses the subscribe example as a subscribe to test:progress filtered by suite 123', () => {
    const result = parseClientMessage(guideSubscribeExample);
    expect(result).toEqual({
      ok: true,
      message: {
        type: 'subscribe',
        payload: { topic: 'test:progress', filter: { suite_execution_id: 123 } },
      },
    });
  });

  it.each(dataExamples)('accepts the %s example unchanged', (type, text) => {
    const value: unknown = JSON.parse(text);
    const result = parseDataMessage(value);
    expect(result.ok, JSON.stringify(result)).toBe(true);
    if (!result.ok) return;
    expect(result.message.type).toBe(type);
    // Nothing of the example is dropped or rewritten by the schema.
    expect(result.message).toEqual(value);
    expect(assertDataMessage(value)).toEqual(value);
    expect(DataMessageSchema.safeParse(value).success).toBe(true);
  });

  it.each(dataExamples)(
    'accepts the %s example as delivered, with sequence, epoch and offset',
    (_type, text) => {
      const delivered = { ...JSON.parse(text), sequence: 1, epoch: 'e1', offset: 0 };
      expect(DeliveredDataMessageSchema.safeParse(delivered).success).toBe(true);
      const { sequence: _s, ...withoutSequence } = delivered;
      expect(DeliveredDataMessageSchema.safeParse(withoutSequence).success).toBe(false);
    },
  );

  it('delivers the test_progress example to the subscribe example', () => {
    const subscribe = parseClientMessage(guideSubscribeExample);
    if (!subscribe.ok || subscribe.message.type !== 'subscribe')
      throw new Error('subscribe example did not parse');
    const message = assertDataMessage(JSON.parse(guideDataExamples.test_progress));
    expect(matchesSubscription(message, subscribe.message.payload)).toBe(true);
    expect(
      matchesSubscription(message, { ...subscribe.message.payload, filter: { suite_execution_id: 124 } }),
    ).toBe(false);
  });

  it('puts the tool_call event example on events:* and events:tool_call', () => {
    expect(topicsForMessage(assertDataMessage(JSON.parse(guideDataExamples.event)))).toEqual([
      'events:*',
      'events:tool_call',
    ]);
  });
});
