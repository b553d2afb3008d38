import type { DataMessage } from '@atp/ws-protocol';

/**
 * The key under which a newer message makes an older one worthless: only the
 * newest `test_progress` per test execution and `suite_progress` per suite
 * execution matter. Every other message (completions, events, logs, deltas)
 * has no key and is never dropped.
 */
export function supersedeKeyOf(message: DataMessage): string | undefined {
  if (message.type === 'test_progress') {
    return `t:${message.payload.suite_execution_id}:${message.payload.test_execution_id}`;
  }
  if (message.type === 'suite_progress') return `s:${message.payload.suite_execution_id}`;
  return undefined;
}
