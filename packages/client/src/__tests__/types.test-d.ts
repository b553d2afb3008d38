import { describe, expectTypeOf, it } from 'vitest';
import type { ATPWebSocket, Filter, TopicFilter, TopicFilterKey } from '../index.js';

declare const ws: ATPWebSocket;

describe('topic names', () => {
  it('accepts the protocol topics and events:<type>', () => {
    ws.subscribe('test:progress');
    ws.subscribe('events:*');
    ws.subscribe('events:tool_call');
    ws.unsubscribe('logs');
  });

  it('accepts a topic known only at run time, typed string', () => {
    const topic: string = 'logs';
    ws.subscribe(topic, { level: 'error' });
    ws.unsubscribe(topic);
  });

  it('rejects a typo in a topic name', () => {
    // @ts-expect-error: not a topic
    ws.subscribe('test:progres');
    // @ts-expect-error: not a topic
    ws.unsubscribe('log');
    // @ts-expect-error: not a topic
    ws.iterate('suite:progres');
  });
});

describe('filters per topic', () => {
  it('gives each topic its own filter keys', () => {
    expectTypeOf<TopicFilterKey<'test:progress'>>().toEqualTypeOf<'suite_execution_id' | 'test_id'>();
    expectTypeOf<TopicFilterKey<'logs'>>().toEqualTypeOf<'suite_execution_id' | 'level'>();
    expectTypeOf<TopicFilterKey<'events:*'>>().toEqualTypeOf<'suite_execution_id' | 'event_type'>();
    expectTypeOf<TopicFilterKey<'events:tool_call'>>().toEqualTypeOf<'suite_execution_id'>();
    expectTypeOf<TopicFilterKey<'delta'>>().toEqualTypeOf<'resource_type'>();
  });

  it('accepts the keys of the topic', () => {
    ws.subscribe('test:progress', { suite_execution_id: 123, test_id: 'test-1' });
    ws.subscribe('logs', { level: ['error', 'critical'] });
    ws.subscribe('events:*', { event_type: 'tool_call' });
    ws.unsubscribe('logs', { level: 'error' });
  });

  it('rejects a key of another topic', () => {
    // @ts-expect-error: level is a key of logs, not of test:progress
    ws.subscribe('test:progress', { level: 'error' });
    // @ts-expect-error: event_type is a key of events:*, not of events:tool_call
    ws.subscribe('events:tool_call', { event_type: 'tool_call' });
    // @ts-expect-error: suite_id is no filter key
    ws.unsubscribe('test:progress', { suite_id: 1 });
  });

  it('still takes a Filter held in a variable', () => {
    const filter: Filter = { suite_execution_id: 1 };
    ws.subscribe('test:progress', filter);
    expectTypeOf<TopicFilter<'suite:progress'>>().toMatchTypeOf<Filter>();
  });
});
