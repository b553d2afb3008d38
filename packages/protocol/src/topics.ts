import type { DataMessage, DataMessageType } from './messages.js';

/** How a filter value is checked: the type of the payload field it is compared with. */
export type FilterValueKind = 'integer' | 'string' | 'name' | 'level';

/** Every filter key of the protocol and the kind of value it takes. */
export const FILTER_KEYS = {
  suite_execution_id: 'integer',
  test_id: 'string',
  event_type: 'name',
  resource_type: 'name',
  level: 'level',
} as const satisfies Record<string, FilterValueKind>;

/** A filter key of the protocol. */
export type FilterKey = keyof typeof FILTER_KEYS;

/** Log levels a `level` filter may name. */
export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;

/** What a topic delivers and which filter keys it accepts. */
export interface TopicDefinition {
  /** The topic as subscribed, e.g. `test:progress` or `events:tool_call`. */
  readonly topic: string;
  /** The data message type it delivers. */
  readonly delivers: DataMessageType;
  /** Filter keys allowed on it. */
  readonly filterKeys: readonly FilterKey[];
  /** For `events:<event_type>`: the event type it is limited to. */
  readonly eventType?: string;
}

/** Prefix of the event topics: `events:*` and `events:<event_type>`. */
export const EVENT_TOPIC_PREFIX = 'events:';

/** Topic that delivers every `event`. */
export const ALL_EVENTS_TOPIC = 'events:*';

/** The fixed topics of the protocol (`events:<event_type>` is open-ended, see {@link describeTopic}). */
export const TOPICS = {
  'test:progress': {
    topic: 'test:progress',
    delivers: 'test_progress',
    filterKeys: ['suite_execution_id', 'test_id'],
  },
  'test:completed': {
    topic: 'test:completed',
    delivers: 'test_completed',
    filterKeys: ['suite_execution_id', 'test_id'],
  },
  'suite:progress': {
    topic: 'suite:progress',
    delivers: 'suite_progress',
    filterKeys: ['suite_execution_id'],
  },
  'suite:completed': {
    topic: 'suite:completed',
    delivers: 'suite_completed',
    filterKeys: ['suite_execution_id'],
  },
  'events:*': { topic: 'events:*', delivers: 'event', filterKeys: ['suite_execution_id', 'event_type'] },
  logs: { topic: 'logs', delivers: 'log_entry', filterKeys: ['suite_execution_id', 'level'] },
  delta: { topic: 'delta', delivers: 'delta_update', filterKeys: ['resource_type'] },
} as const satisfies Record<string, TopicDefinition>;

/** A fixed topic name. */
export type FixedTopic = keyof typeof TOPICS;

/** Any valid topic: a fixed one or `events:<event_type>`. */
export type Topic = FixedTopic | `events:${string}`;

const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whether `value` is a valid event type name (`tool_call`, `llm_request`, …). */
export function isEventTypeName(value: string): boolean {
  return EVENT_TYPE_PATTERN.test(value);
}

/**
 * The definition of a topic, or `undefined` when the topic does not exist.
 *
 * @example
 * describeTopic('events:tool_call'); // { delivers: 'event', eventType: 'tool_call', filterKeys: ['suite_execution_id'] }
 */
export function describeTopic(topic: string): TopicDefinition | undefined {
  if (Object.hasOwn(TOPICS, topic)) return TOPICS[topic as FixedTopic];
  if (topic.startsWith(EVENT_TOPIC_PREFIX)) {
    const eventType = topic.slice(EVENT_TOPIC_PREFIX.length);
    if (isEventTypeName(eventType)) {
      return { topic, delivers: 'event', filterKeys: ['suite_execution_id'], eventType };
    }
  }
  return undefined;
}

/** The topics a data message is delivered on (an `event` is on `events:*` and on `events:<its type>`). */
export function topicsForMessage(message: DataMessage): string[] {
  switch (message.type) {
    case 'test_progress':
      return ['test:progress'];
    case 'test_completed':
      return ['test:completed'];
    case 'suite_progress':
      return ['suite:progress'];
    case 'suite_completed':
      return ['suite:completed'];
    case 'log_entry':
      return ['logs'];
    case 'event':
      return [ALL_EVENTS_TOPIC, EVENT_TOPIC_PREFIX + message.payload.event_type];
    case 'delta_update':
      return ['delta'];
  }
}
