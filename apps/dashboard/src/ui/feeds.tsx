import { type Filter, useATPSubscription } from '@atp/ws-react';
import { useLayoutEffect, useMemo } from 'react';
import type { DashboardStore } from './dashboard-store.js';
import { useSuiteExecution } from './use-suite-execution.js';

/** Every subscription replays its run from the first message kept: a page opened late misses nothing. */
const FROM_START = { from: 'start' } as const;

/**
 * Feeds the suite list: progress and completion of every suite, and the
 * suites' own delta updates (for their start time), each from the start of history.
 */
export function SuiteFeeds({ store }: { store: DashboardStore }): null {
  useATPSubscription('suite:progress', undefined, (p) => store.applySuiteProgress(p), FROM_START);
  useATPSubscription('suite:completed', undefined, (p) => store.applySuiteCompleted(p), FROM_START);
  useATPSubscription(
    'delta',
    { resource_type: 'suite_execution' },
    (p) => store.applySuiteDelta(p),
    FROM_START,
  );
  return null;
}

/**
 * Feeds the selected suite: its record (state, tests, counts) as a live
 * resource (`use-suite-execution.ts`), handed to the store, which renders
 * once per frame; and, once the record is there, its event stream and log
 * tail from the first event of the run, then live. Selecting the suite again later replays them again; the
 * store applies each message (by stream position) once.
 */
export function DetailFeeds({ store, suiteId }: { store: DashboardStore; suiteId: number }): null {
  const filter = useMemo<Filter>(() => ({ suite_execution_id: suiteId }), [suiteId]);
  // Before the subscriptions' effects, so the replay has its detail to land in.
  useLayoutEffect(() => store.select(suiteId), [store, suiteId]);
  const record = useSuiteExecution(suiteId);
  useLayoutEffect(() => store.setSelected(suiteId, record), [store, suiteId, record]);
  // The replays wait for the record: a `get_resource` sent after them would wait for them, and
  // the run shows as soon as its record is there, its events and log lines filling in after.
  const replay = useMemo(
    () => ({ from: 'start', enabled: record.status !== 'loading' }) as const,
    [record.status],
  );
  useATPSubscription('events:*', filter, (p, at) => store.applyEvent(p, at), replay);
  useATPSubscription('logs', filter, (p, at) => store.applyLog(p, at), replay);
  return null;
}
