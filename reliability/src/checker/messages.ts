import type { DataMessage, Filter } from '@atp/ws-protocol';

/** A subscription as the checker generates it. */
export interface Sub {
  readonly topic: string;
  readonly filter?: Filter;
}

export const SUITES = [1, 2, 3] as const;
const TIMESTAMP = '2024-01-15T10:30:00Z';
const LEVELS = ['info', 'error'] as const;
const EVENT_TYPES = ['tool_call', 'reasoning'] as const;

/** The pool subscriptions are drawn from: several overlap on purpose (events:* and events:tool_call, logs by suite and by level). */
export const SUB_POOL: readonly Sub[] = [
  { topic: 'logs', filter: { suite_execution_id: 1 } },
  { topic: 'logs', filter: { level: 'error' } },
  { topic: 'logs' },
  { topic: 'events:*', filter: { suite_execution_id: 2 } },
  { topic: 'events:tool_call', filter: { suite_execution_id: 2 } },
  { topic: 'events:tool_call' },
  { topic: 'test:progress', filter: { suite_execution_id: [1, 3] } },
  { topic: 'test:completed' },
  { topic: 'suite:progress' },
  { topic: 'delta', filter: { resource_type: 'suite' } },
];

/**
 * The `k`-th message of a schedule (k is its unique id, carried in the
 * payload and read back by {@link tagOf}). `shape` picks its type and keys;
 * `pad` adds bytes (to fill outbound buffers). Progress messages share a key
 * with others when `sharedKey` is set (so coalescing may drop all but the newest).
 */
export function makeMessage(k: number, shape: number, pad: number, sharedKey: boolean): DataMessage {
  const suite = SUITES[shape % 3] as number;
  const text = `k=${k};${'x'.repeat(pad)}`;
  switch (Math.floor(shape / 3) % 6) {
    case 0:
      return {
        type: 'log_entry',
        payload: {
          suite_execution_id: suite,
          level: LEVELS[shape % 2] as 'info',
          message: text,
          timestamp: TIMESTAMP,
        },
      };
    case 1:
      return {
        type: 'event',
        payload: {
          suite_execution_id: suite,
          event_type: EVENT_TYPES[(shape >> 1) % 2] as string,
          timestamp: TIMESTAMP,
          payload: { k, text },
        },
      };
    case 2:
      return {
        type: 'test_progress',
        payload: {
          suite_execution_id: suite,
          test_execution_id: sharedKey ? 7 : 1_000_000 + k,
          test_id: `t-${sharedKey ? 7 : k}`,
          status: 'running',
          progress_percent: 50,
          message: text,
        },
      };
    case 3:
      return {
        type: 'test_completed',
        payload: {
          suite_execution_id: suite,
          test_execution_id: k,
          test_id: `t-${k}`,
          success: true,
          test_name: text,
        },
      };
    case 4:
      return {
        type: 'suite_progress',
        payload: {
          suite_execution_id: sharedKey ? 9 : 1_000_000 + k,
          suite_name: text,
          status: 'running',
          progress_percent: 10,
          completed_tests: 1,
          total_tests: 2,
        },
      };
    default:
      return {
        type: 'delta_update',
        payload: {
          resource_type: shape % 2 === 0 ? 'suite' : 'test',
          resource_id: suite,
          sequence: k,
          changes: { text },
        },
      };
  }
}

/** The unique id `k` a message of {@link makeMessage} carries, or -1. */
export function tagOf(message: { type: string; payload: unknown }): number {
  const payload = message.payload as Record<string, unknown>;
  let text: unknown;
  switch (message.type) {
    case 'log_entry':
    case 'test_progress':
      text = payload.message;
      break;
    case 'event':
      text = (payload.payload as { text?: unknown } | undefined)?.text;
      break;
    case 'test_completed':
      text = payload.test_name;
      break;
    case 'suite_progress':
      text = payload.suite_name;
      break;
    case 'delta_update':
      text = (payload.changes as { text?: unknown } | undefined)?.text;
      break;
  }
  if (typeof text !== 'string' || !text.startsWith('k=')) return -1;
  return Number(text.slice(2, text.indexOf(';')));
}

/** The key under which a newer progress message supersedes an older one (as the hub coalesces), if any. */
export function supersedeKey(message: DataMessage): string | undefined {
  if (message.type === 'test_progress')
    return `t:${message.payload.suite_execution_id}:${message.payload.test_execution_id}`;
  if (message.type === 'suite_progress') return `s:${message.payload.suite_execution_id}`;
  return undefined;
}
