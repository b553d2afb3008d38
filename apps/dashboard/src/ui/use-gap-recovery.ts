import { GapReason, useATPWebSocket } from '@atp/ws-react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { fetchExecutions } from './api.js';
import type { DashboardStore } from './dashboard-store.js';

/** What the page says after it recovered from a gap. */
export interface RecoveryNotice {
  readonly id: number;
  readonly reason: string;
  /** A whole-run replay came back short: the server no longer keeps the oldest part. */
  readonly partialHistory: boolean;
  /** The REST API could not be reached. */
  readonly failed: boolean;
}

/**
 * What a `sequence_gap` means for the suite list, the one view that is not a
 * live resource (the selected suite is: `useResource` refetches it by
 * itself). The list becomes exactly `GET /api/executions`; after a new epoch
 * (a restarted server) the list and the event and log feeds are emptied at
 * once, before the resume replays the new stream from its start. The newest
 * gap's answer wins. The page says what happened in a notice.
 */
export function useGapRecovery(store: DashboardStore): {
  notice: RecoveryNotice | undefined;
  dismiss: () => void;
} {
  const { on } = useATPWebSocket();
  const [notice, setNotice] = useState<RecoveryNotice>();
  const round = useRef(0);

  useEffect(
    () =>
      on('sequence_gap', (gap) => {
        // Synchronously: the replay of the new stream follows this event.
        if (gap.reason === GapReason.EpochChanged) store.reset();
        const id = ++round.current;
        const done = (failed: boolean) =>
          setNotice({ id, reason: gap.reason, partialHistory: gap.subscription !== undefined, failed });
        fetchExecutions().then(
          (list) => {
            if (id === round.current) store.loadSuites(list, { replace: true });
            done(false);
          },
          () => done(true),
        );
      }),
    [on, store],
  );

  // The notice goes away by itself; a new one restarts the timer.
  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(undefined), 12_000);
    return () => clearTimeout(timer);
  }, [notice]);

  return { notice, dismiss: useCallback(() => setNotice(undefined), []) };
}
