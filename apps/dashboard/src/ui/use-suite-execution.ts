import type { DeliveredDataMessage } from '@atp/ws-protocol';
import { type ResourceView, useResource } from '@atp/ws-react';
import { useMemo } from 'react';
import { applyToSuite, SUITE_EXECUTION } from '../server/executions.js';
import type { SuiteExecutionRecord } from './types.js';

/** The topics that change a suite execution, filtered to it. */
const SUITE_TOPICS = [
  'suite:progress',
  'suite:completed',
  'test:progress',
  'test:completed',
  'events:*',
  'logs',
];

/**
 * One data message applied to the page's copy of the suite, as the server's
 * `ExecutionStore` applies it (the same function): a new object when it
 * changed, so that React sees the change; the same one otherwise.
 */
export function reduceSuite(
  suite: SuiteExecutionRecord,
  message: DeliveredDataMessage,
): SuiteExecutionRecord {
  return applyToSuite(suite, message) ? { ...suite } : suite;
}

/** What the page's resource of suite `id` subscribes to. */
export function suiteSubscriptions(id: number) {
  return [
    ...SUITE_TOPICS.map((topic) => ({ topic, filter: { suite_execution_id: id } })),
    // Deltas are filtered by resource type only: those of other suites change nothing.
    { topic: 'delta', filter: { resource_type: ['suite_execution', 'test_execution'] } },
  ];
}

/**
 * The selected suite execution as a live resource of the server
 * (`hub.resources`, kind `suite_execution`): its record as
 * `GET /api/executions/:id` has it, then every change, kept right through
 * gaps, restarts and late joins by `@atp/ws-react`'s `useResource`.
 */
export function useSuiteExecution(id: number | undefined): ResourceView<SuiteExecutionRecord> {
  const subscriptions = useMemo(() => suiteSubscriptions(id ?? 0), [id]);
  return useResource<SuiteExecutionRecord>(SUITE_EXECUTION, id ?? 0, {
    subscriptions,
    reduce: reduceSuite,
    enabled: id !== undefined,
  });
}
