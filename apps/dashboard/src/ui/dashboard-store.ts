import type { MessageMeta, ResourceView } from '@atp/ws-react';
import { executionIdOf } from '../server/executions.js';
import {
  type DeltaUpdatePayload,
  type EventItem,
  type EventPayload,
  FINISHED_STATUSES,
  type LogEntryPayload,
  type LogItem,
  type Suite,
  type SuiteCompletedPayload,
  type SuiteExecutionRecord,
  type SuiteExecutionSummary,
  type SuiteFeed,
  type SuiteProgressPayload,
  toSuite,
} from './types.js';

/** What the page renders: one immutable snapshot per flush. */
export interface DashboardSnapshot {
  /** Running suites first, then the newest. */
  readonly suites: readonly Suite[];
  /** The first `GET /api/executions` answered (or failed), so an empty list means no suites. */
  readonly suitesLoaded: boolean;
  /** The selected suite's event stream and log tail. */
  readonly feed: SuiteFeed | undefined;
  /** The selected suite's record, a live resource (`useSuiteExecution`), and which suite it is. */
  readonly selected: { readonly id: number; readonly view: ResourceView<SuiteExecutionRecord> } | undefined;
  /** Data messages per second over the last few seconds. */
  readonly rate: number;
}

/** Options of {@link DashboardStore}. */
export interface DashboardStoreOptions {
  /** Events and log lines kept for the selected suite. @default 5000 */
  maxItems?: number;
  /** Schedules a flush; tests pass a synchronous one. @default requestAnimationFrame with a timeout fallback */
  schedule?: (flush: () => void) => void;
}

interface MutableFeed {
  suiteId: number;
  /** Stream positions (`epoch:offset`) already applied: a message is applied once however often it comes. */
  seen: Set<string>;
  events: EventItem[];
  logs: LogItem[];
}

const RATE_WINDOW_MS = 5000;
/** Suites whose feed is kept after another one is selected, so that selecting one again loses nothing. */
const KEPT_FEEDS = 12;

/** Where a message sits in the stream: its identity. */
type Position = Pick<MessageMeta, 'epoch' | 'offset'>;

/** Requests a frame, or a timer when frames are throttled (a hidden tab), whichever comes first. */
function scheduleFrame(flush: () => void): void {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    flush();
  };
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(run);
  setTimeout(run, 250);
}

/**
 * The page's state besides the selected suite (a live resource, see
 * `use-suite-execution.ts`): the suites with their progress, fed by data
 * messages and `GET /api/executions`, and the selected suite's event stream
 * and log tail, replayed from the start of its run. Messages
 * are applied as they come and listeners hear about them once per frame, so a
 * whole-run replay of thousands of messages renders a few times, not thousands.
 *
 * Updates are monotonic: a replayed or late `suite_progress` never moves a
 * suite back, and nothing moves a finished suite or test back to running.
 */
export class DashboardStore {
  readonly #suites = new Map<number, Suite>();
  #suitesLoaded = false;
  /** Feeds of the suites selected in this page's life, the selected one last. */
  readonly #feeds = new Map<number, MutableFeed>();
  #selected: number | undefined;
  #selectedView: DashboardSnapshot['selected'];
  readonly #arrivals: number[] = [];
  readonly #listeners = new Set<() => void>();
  readonly #maxItems: number;
  readonly #schedule: (flush: () => void) => void;
  #scheduled = false;
  #snapshot: DashboardSnapshot;
  #lastRate = 0;

  constructor(options: DashboardStoreOptions = {}) {
    this.#maxItems = options.maxItems ?? 5000;
    this.#schedule = options.schedule ?? scheduleFrame;
    this.#snapshot = this.#build();
  }

  /** For `useSyncExternalStore`: returns a function that removes the listener. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** For `useSyncExternalStore`: the same object until something changed. */
  readonly getSnapshot = (): DashboardSnapshot => this.#snapshot;

  /**
   * Builds the snapshot and tells the listeners now, rather than at the next
   * frame: for a change the page acts on at once (a suite it shows is gone).
   */
  flush(): void {
    this.#snapshot = this.#build();
    for (const listener of [...this.#listeners]) listener();
  }

  // ── suites ────────────────────────────────────────────────────────────────

  applySuiteProgress(p: SuiteProgressPayload): void {
    const current = this.#suites.get(p.suite_execution_id);
    if (current && sameRun(current, p) && isStale(current, p.completed_tests)) {
      this.#changed();
      return;
    }
    this.#suites.set(p.suite_execution_id, {
      id: p.suite_execution_id,
      name: p.suite_name ?? current?.name,
      agent: p.agent_name ?? current?.agent,
      status: p.status,
      progressPercent: p.progress_percent,
      totalTests: p.total_tests,
      completedTests: p.completed_tests,
      passedTests: p.passed_tests ?? current?.passedTests ?? 0,
      failedTests: p.failed_tests ?? current?.failedTests ?? 0,
      successRate: undefined,
      durationSeconds: undefined,
      startedAt: current && sameRun(current, p) ? current.startedAt : undefined,
    });
    this.#changed();
  }

  applySuiteCompleted(p: SuiteCompletedPayload): void {
    const current = this.#suites.get(p.suite_execution_id);
    this.#suites.set(p.suite_execution_id, {
      id: p.suite_execution_id,
      name: p.suite_name ?? current?.name,
      agent: p.agent_name ?? current?.agent,
      status: p.status ?? 'completed',
      progressPercent: 100,
      totalTests: p.total_tests,
      completedTests: p.passed_tests + p.failed_tests,
      passedTests: p.passed_tests,
      failedTests: p.failed_tests,
      successRate: p.success_rate,
      durationSeconds: p.duration_seconds,
      startedAt: current?.startedAt,
    });
    this.#changed();
  }

  /** `delta_update` of a `suite_execution`: only its start time is not in the progress messages. */
  applySuiteDelta(p: DeltaUpdatePayload): void {
    const startedAt = p.changes.started_at;
    // The same rule as the server's store: "0500" names no suite.
    const id = executionIdOf(p.resource_id);
    const current = id === undefined ? undefined : this.#suites.get(id);
    if (current && typeof startedAt === 'string') {
      this.#suites.set(current.id, { ...current, startedAt });
    }
    this.#changed();
  }

  /**
   * Takes the suites of `GET /api/executions`. `replace` (after a sequence gap)
   * makes them the whole truth: suites the server no longer knows are dropped.
   */
  loadSuites(list: readonly SuiteExecutionSummary[], { replace = false } = {}): void {
    if (replace) this.#suites.clear();
    for (const record of list) {
      const current = this.#suites.get(record.id);
      const incoming = toSuite(record);
      if (!replace && current && sameRun(current, incoming) && isStale(current, incoming.completedTests)) {
        if (!current.startedAt && incoming.startedAt) {
          this.#suites.set(record.id, { ...current, startedAt: incoming.startedAt });
        }
        continue;
      }
      this.#suites.set(record.id, { ...incoming, startedAt: incoming.startedAt ?? current?.startedAt });
    }
    this.#suitesLoaded = true;
    this.#changed();
  }

  /** The suites could not be fetched: stop showing "loading". */
  markSuitesLoaded(): void {
    this.#suitesLoaded = true;
    this.#changed();
  }

  // ── the selected suite's event stream and log tail ───────────────────────

  /**
   * Shows a suite's feed: the one kept from an earlier selection (its
   * subscriptions replay from the start, and what was already applied is
   * skipped), or a new one.
   */
  select(suiteId: number | undefined): void {
    this.#selected = suiteId;
    if (suiteId !== undefined) {
      const feed = this.#feeds.get(suiteId) ?? { suiteId, seen: new Set(), events: [], logs: [] };
      this.#feeds.delete(suiteId);
      this.#feeds.set(suiteId, feed);
      for (const id of this.#feeds.keys()) {
        if (this.#feeds.size <= KEPT_FEEDS) break;
        this.#feeds.delete(id);
      }
    }
    this.#changed();
  }

  /**
   * Forgets every suite and feed: after the server lost its history (a new
   * epoch) nothing listed is current any more, and the resume replays what
   * the new stream has from its start.
   */
  reset(): void {
    this.#suites.clear();
    this.#feeds.clear();
    this.select(this.#selected);
  }

  applyEvent(p: EventPayload, at: Position): void {
    const feed = this.#feedFor(p.suite_execution_id, at);
    if (!feed) return;
    feed.events.push({
      key: `${at.epoch}:${at.offset}`,
      testExecutionId: p.test_execution_id,
      type: p.event_type,
      timestamp: p.timestamp,
      durationMs: p.duration_ms,
      payload: p.payload,
    });
    if (feed.events.length > this.#maxItems * 1.2) feed.events.splice(0, feed.events.length - this.#maxItems);
    this.#changed();
  }

  applyLog(p: LogEntryPayload, at: Position): void {
    const feed = p.suite_execution_id === undefined ? undefined : this.#feedFor(p.suite_execution_id, at);
    if (!feed) return;
    feed.logs.push({
      key: `${at.epoch}:${at.offset}`,
      testExecutionId: p.test_execution_id,
      level: p.level,
      message: p.message,
      timestamp: p.timestamp,
      source: p.source,
    });
    if (feed.logs.length > this.#maxItems * 1.2) feed.logs.splice(0, feed.logs.length - this.#maxItems);
    this.#changed();
  }

  /**
   * Takes the selected suite's live record as `useResource` has it now: shown
   * at the next frame with the rest, so that a fast run renders once per frame.
   */
  setSelected(id: number, view: ResourceView<SuiteExecutionRecord>): void {
    if (this.#selectedView?.view === view && this.#selectedView.id === id) return;
    this.#selectedView = { id, view };
    this.#changed();
  }

  /** Counts a data message the page received, for the rate. */
  countArrival(): void {
    this.#arrived();
  }

  /** Recomputes the message rate when it may have changed (call every second or two). */
  refreshRate(): void {
    if (this.#lastRate > 0 || this.#arrivals.length > 0) this.#changed();
  }

  // ── internals ─────────────────────────────────────────────────────────────

  /** The feed a message of `suiteId` goes to, or `undefined` (not shown, or already applied). */
  #feedFor(suiteId: number, at: Position): MutableFeed | undefined {
    const feed = this.#feeds.get(suiteId);
    if (!feed) return undefined;
    const key = `${at.epoch}:${at.offset}`;
    if (feed.seen.has(key)) return undefined;
    feed.seen.add(key);
    return feed;
  }

  #arrived(): void {
    const now = Date.now();
    this.#arrivals.push(now);
    if (this.#arrivals.length > 20_000) this.#arrivals.splice(0, 10_000);
  }

  #changed(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      this.flush();
    });
  }

  #rate(): number {
    const since = Date.now() - RATE_WINDOW_MS;
    let first = this.#arrivals.findIndex((at) => at >= since);
    if (first === -1) first = this.#arrivals.length;
    this.#arrivals.splice(0, first);
    this.#lastRate = this.#arrivals.length / (RATE_WINDOW_MS / 1000);
    return this.#lastRate;
  }

  #build(): DashboardSnapshot {
    const suites = [...this.#suites.values()].sort(
      (a, b) =>
        Number(FINISHED_STATUSES.has(a.status)) - Number(FINISHED_STATUSES.has(b.status)) || b.id - a.id,
    );
    const f = this.#selected === undefined ? undefined : this.#feeds.get(this.#selected);
    const feed: SuiteFeed | undefined = f && {
      suiteId: f.suiteId,
      events: f.events.slice(-this.#maxItems),
      logs: f.logs.slice(-this.#maxItems),
    };
    const selected = this.#selectedView?.id === this.#selected ? this.#selectedView : undefined;
    return { suites, suitesLoaded: this.#suitesLoaded, feed, selected, rate: this.#rate() };
  }
}

/** Whether a message is about the same run as what is shown (ids are reused after a server restart). */
function sameRun(
  current: Suite,
  next: { suite_name?: string | undefined; name?: string | undefined },
): boolean {
  const name = 'suite_name' in next ? next.suite_name : next.name;
  return name === undefined || current.name === undefined || name === current.name;
}

/** A progress report older than what is shown. */
function isStale(current: Suite, completedTests: number): boolean {
  return FINISHED_STATUSES.has(current.status) || completedTests < current.completedTests;
}
