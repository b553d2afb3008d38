import { GapReason, type SequenceGapEvent, useATPWebSocket } from '@atp/ws-react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { fetchExecutions, fetchSuiteExecution } from './api.js';
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
 * The "Handle sequence gaps" practice of docs/GUIDE.md: on `sequence_gap`, refetch
 * `GET /api/executions` (the suite list becomes exactly what the server has)
 * and `GET /api/executions/:id` of the selected suite (its tests as the server
 * has them), and rebuild the state from them.
 *
 * When the server's history was lost altogether (a new epoch: a restarted
 * server), everything shown belongs to a stream that is gone: the store is
 * emptied at once, before the resume replays what the new stream holds from
 * its start, and the REST snapshots complete it. Gaps that come while a
 * recovery runs are folded into one more round after it. A selected suite the
 * server no longer has (a restarted server starts its own runs) is given up
 * through `onSelectedGone`, so that the page moves on to one it has.
 */
export function useGapRecovery(
  store: DashboardStore,
  selectedId: number | undefined,
  onSelectedGone: (suiteId: number) => void,
): { notice: RecoveryNotice | undefined; dismiss: () => void } {
  const { on } = useATPWebSocket();
  const [notice, setNotice] = useState<RecoveryNotice>();
  const selected = useRef(selectedId);
  useEffect(() => {
    selected.current = selectedId;
  }, [selectedId]);
  const state = useRef({ running: false, again: false, id: 0 });

  const recover = useCallback(
    async (gap: SequenceGapEvent) => {
      const s = state.current;
      if (s.running) {
        s.again = true;
        return;
      }
      s.running = true;
      let failed = false;
      do {
        s.again = false;
        failed = false;
        const suiteId = selected.current;
        const [list, record] = await Promise.allSettled([
          fetchExecutions(),
          suiteId === undefined ? Promise.resolve(undefined) : fetchSuiteExecution(suiteId),
        ]);
        if (list.status === 'fulfilled') store.loadSuites(list.value, { replace: true });
        else failed = true;
        if (suiteId !== undefined && record.status === 'fulfilled') {
          if (record.value === undefined && list.status === 'fulfilled') {
            // The page picks another suite from the store's snapshot: it must hold the new list already.
            store.flush();
            onSelectedGone(suiteId);
          } else store.loadDetail(suiteId, record.value);
        } else if (record.status === 'rejected') {
          failed = true;
        }
      } while (s.again);
      s.running = false;
      s.id += 1;
      setNotice({ id: s.id, reason: gap.reason, partialHistory: gap.subscription !== undefined, failed });
    },
    [store, onSelectedGone],
  );

  useEffect(
    () =>
      on('sequence_gap', (gap) => {
        // Synchronously: the replay of the new stream follows this event.
        if (gap.reason === GapReason.EpochChanged) store.reset();
        void recover(gap);
      }),
    [on, store, recover],
  );

  // The notice goes away by itself; a new one restarts the timer.
  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(undefined), 12_000);
    return () => clearTimeout(timer);
  }, [notice]);

  return { notice, dismiss: useCallback(() => setNotice(undefined), []) };
}
