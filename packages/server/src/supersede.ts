import type { DataMessage } from '@atp/ws-protocol';

/** Optional fields of `test_progress`, in the order of their bit in a supersede key. */
const TEST_OPTIONAL = ['test_name', 'current_run', 'total_runs', 'message'] as const;
/** Optional fields of `suite_progress`, likewise. */
const SUITE_OPTIONAL = ['suite_name', 'agent_name', 'passed_tests', 'failed_tests'] as const;

/** Which of `fields` the payload carries, as a number with one bit per field. */
function present(payload: object, fields: readonly string[]): number {
  let bits = 0;
  for (let i = 0; i < fields.length; i++) {
    if ((payload as Record<string, unknown>)[fields[i] as string] !== undefined) bits |= 1 << i;
  }
  return bits;
}

/**
 * The key under which a newer message makes an older one worthless: only the
 * newest `test_progress` per test execution and `suite_progress` per suite
 * execution matter. Every other message (completions, events, logs, deltas)
 * has no key and is never dropped.
 *
 * The key also names which optional fields the message carries: a newer
 * progress supersedes an older one only when it carries every field the
 * older did, so a client that merges each payload into its state
 * (`{ ...state, ...payload }`) ends with the same state whether the older was
 * dropped or not. A progress that leaves out a field an older one had (a
 * `passed_tests` sent every tenth message, say) does not make it worthless.
 */
export function supersedeKeyOf(message: DataMessage): string | undefined {
  if (message.type === 'test_progress') {
    const { payload } = message;
    return `t:${payload.suite_execution_id}:${payload.test_execution_id}:${present(payload, TEST_OPTIONAL)}`;
  }
  if (message.type === 'suite_progress') {
    const { payload } = message;
    return `s:${payload.suite_execution_id}:${present(payload, SUITE_OPTIONAL)}`;
  }
  return undefined;
}
