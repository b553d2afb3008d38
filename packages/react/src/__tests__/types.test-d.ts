import { describe, expectTypeOf, it } from 'vitest';
import { type TopicPayload, useLatest, useMessageList } from '../index.js';

describe('hook types', () => {
  it('types the payload by topic', () => {
    expectTypeOf(useLatest('suite:progress')).toEqualTypeOf<TopicPayload<'suite:progress'> | undefined>();
    expectTypeOf(useMessageList('events:tool_call')).toEqualTypeOf<
      readonly TopicPayload<'events:tool_call'>[]
    >();
  });

  it('rejects a typo in a topic and a filter key of another topic', () => {
    // @ts-expect-error: not a topic
    useLatest('test:progres');
    // @ts-expect-error: level is a key of logs, not of test:progress
    useMessageList('test:progress', { level: 'error' });
    useMessageList('logs', { level: 'error' });
  });
});
