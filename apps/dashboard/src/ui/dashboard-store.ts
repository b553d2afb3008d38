import type { MessageMeta } from '@atp/ws-react';
import {
  type DeltaUpdatePayload,
  type EventItem,
  type EventPayload,
  FINISHED_STATUSES,
  LOG_LEVELS,
  type LogEntryPayload,
  type LogItem,
  type LogLevel,
  type Suite,
  type SuiteCompletedPayload,
  type SuiteExecutionRecord,
  type SuiteExecutionSummary,
  type SuiteProgressPayload,
  type TestCompletedPayload,
  type TestExecutionRecord,
  type TestProgressPayload,
  type TestRun,
} from './types.js';

/** The selected suite's tests, events and logs. */
export interface SuiteDetail {
  readonly suiteId: number;
  /** The newest first (the running one on top). */
  readonly tests: readonly TestRun[];
  /** Oldest first; the newest `maxItems` are kept. */
  readonly events: readonly EventItem[];
  /** Oldest first; the newest `maxItems` are kept. */
  readonly logs: readonly LogItem[];
  /** Every event received for this run, by type (not capped). */
  readonly eventCounts: Readonly<Record<string, number>>;
  /** Every log line received for this run, by level (not capped). */
  readonly logCounts: Readonly<Record<LogLevel, number>>;
  /** The server does not know this execution (404). */
  readonly missing: boolean;
}

/** What the page renders: one immutable snapshot per flush. */
export interface DashboardSnapshot {
  /** Running suites first, then the newest. */
  readonly suites: readonly Suite[];
  /** The first `GET /api/executions` answered (or failed), so an empty list means no suites. */
  readonly suitesLoaded: boolean;
  readonly detail: SuiteDetail | undefined;
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

interface MutableDetail {
  suiteId: number;
  tests: Map<number, TestRun>;
  /** Stream positions (`epoch:offset`) already applied: a message is applied once however often it comes. */
  seen: Set<string>;
  events: EventItem[];
  logs: LogItem[];
  eventCounts: Record<string, number>;
  logCounts: Record<LogLevel, number>;
  missing: boolean;
}

const RATE_WINDOW_MS = 5000;
/** Suites whose detail is kept after another one is selected, so that selecting one again loses nothing. */
const KEPT_DETAILS = 12;

/** Where a message sits in the stream: its identity. */
type Position = Pick<MessageMeta, 'epoch' | 'offset'>;

const emptyLogCounts = (): Record<LogLevel, number> =>
  Object.fromEntries(LOG_LEVELS.map((level) => [level, 0])) as Record<LogLevel, number>;

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
 * The page's state, fed by data messages and REST snapshots: suites with
 * their progress and the selected suite's tests, events and logs. Messages
 * are applied as they come and listeners hear about them once per frame, so a
 * whole-run replay of thousands of messages renders a few times, not thousands.
 *
 * Updates are monotonic: a replayed or late `suite_progress` never moves a
 * suite back, and nothing moves a finished suite or test back to running.
 */
export class DashboardStore {
  readonly #suites = new Map<number, Suite>();
  #suitesLoaded = false;
  /** Details of the suites selected in this page's life, the selected one last. */
  readonly #details = new Map<number, MutableDetail>();
  #selected: number | undefined;
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
    this.#arrived();
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
    this.#arrived();
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
    this.#arrived();
    const startedAt = p.changes.started_at;
    const current = this.#suites.get(Number(p.resource_id));
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
      const incoming = fromSummary(record);
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

  // ── the selected suite ────────────────────────────────────────────────────

  /**
   * Shows a suite's detail: the one kept from an earlier selection (its
   * subscriptions replay from the start, and what was already applied is
   * skipped), or a new one.
   */
  select(suiteId: number | undefined): void {
    this.#selected = suiteId;
    if (suiteId !== undefined) {
      const detail = this.#details.get(suiteId) ?? newDetail(suiteId);
      this.#details.delete(suiteId);
      this.#details.set(suiteId, detail);
      for (const id of this.#details.keys()) {
        if (this.#details.size <= KEPT_DETAILS) break;
        this.#details.delete(id);
      }
    }
    this.#changed();
  }

  /**
   * Forgets every suite and detail: after the server lost its history (a new
   * epoch) nothing shown is current any more, and the resume replays what the
   * new stream has from its start.
   */
  reset(): void {
    this.#suites.clear();
    this.#details.clear();
    this.select(this.#selected);
  }

  applyTestProgress(p: TestProgressPayload, at: Position): void {
    this.#arrived();
    const detail = this.#detailFor(p.suite_execution_id, at);
    if (!detail) return;
    const current = detail.tests.get(p.test_execution_id);
    if (current && (FINISHED_STATUSES.has(current.status) || p.progress_percent < current.progressPercent)) {
      this.#changed();
      return;
    }
    detail.tests.set(p.test_execution_id, {
      id: p.test_execution_id,
      testId: p.test_id,
      name: p.test_name ?? current?.name,
      status: p.status,
      progressPercent: p.progress_percent,
      currentRun: p.current_run ?? current?.currentRun,
      totalRuns: p.total_runs ?? current?.totalRuns,
      message: p.message ?? current?.message,
      score: current?.score,
      durationSeconds: current?.durationSeconds,
      error: current?.error,
    });
    this.#changed();
  }

  applyTestCompleted(p: TestCompletedPayload, at: Position): void {
    this.#arrived();
    const detail = this.#detailFor(p.suite_execution_id, at);
    if (!detail) return;
    const current = detail.tests.get(p.test_execution_id);
    detail.tests.set(p.test_execution_id, {
      id: p.test_execution_id,
      testId: p.test_id,
      name: p.test_name ?? current?.name,
      status: p.success ? 'passed' : 'failed',
      progressPercent: 100,
      currentRun: current?.totalRuns ?? current?.currentRun,
      totalRuns: current?.totalRuns,
      message: current?.message,
      score: p.score,
      durationSeconds: p.duration_seconds,
      error: p.error,
    });
    this.#changed();
  }

  applyEvent(p: EventPayload, at: Position): void {
    this.#arrived();
    const detail = this.#detailFor(p.suite_execution_id, at);
    if (!detail) return;
    detail.events.push({
      key: `${at.epoch}:${at.offset}`,
      testExecutionId: p.test_execution_id,
      type: p.event_type,
      timestamp: p.timestamp,
      durationMs: p.duration_ms,
      payload: p.payload,
    });
    detail.eventCounts[p.event_type] = (detail.eventCounts[p.event_type] ?? 0) + 1;
    if (detail.events.length > this.#maxItems * 1.2)
      detail.events.splice(0, detail.events.length - this.#maxItems);
    this.#changed();
  }

  applyLog(p: LogEntryPayload, at: Position): void {
    this.#arrived();
    const detail = p.suite_execution_id === undefined ? undefined : this.#detailFor(p.suite_execution_id, at);
    if (!detail) return;
    detail.logs.push({
      key: `${at.epoch}:${at.offset}`,
      testExecutionId: p.test_execution_id,
      level: p.level,
      message: p.message,
      timestamp: p.timestamp,
      source: p.source,
    });
    detail.logCounts[p.level] += 1;
    if (detail.logs.length > this.#maxItems * 1.2) detail.logs.splice(0, detail.logs.length - this.#maxItems);
    this.#changed();
  }

  /**
   * Takes `GET /api/executions/:id` (or its 404 as `undefined`): the tests
   * as the server has them, merged without moving any back; the suite's own
   * fields update the suite list.
   */
  loadDetail(suiteId: number, record: SuiteExecutionRecord | undefined): void {
    const detail = this.#details.get(suiteId);
    if (!detail) return;
    detail.missing = record === undefined;
    if (record) {
      this.loadSuites([record]);
      for (const test of record.tests) {
        const current = detail.tests.get(test.id);
        const incoming = fromTestRecord(test);
        if (current && (FINISHED_STATUSES.has(current.status) || isBehind(incoming, current))) continue;
        detail.tests.set(test.id, incoming);
      }
    }
    this.#changed();
  }

  /** Recomputes the message rate when it may have changed (call every second or two). */
  refreshRate(): void {
    if (this.#lastRate > 0 || this.#arrivals.length > 0) this.#changed();
  }

  // ── internals ─────────────────────────────────────────────────────────────

  /** The detail a message of `suiteId` goes to, or `undefined` (not shown, or already applied). */
  #detailFor(suiteId: number, at: Position): MutableDetail | undefined {
    const detail = this.#details.get(suiteId);
    if (!detail) return undefined;
    const key = `${at.epoch}:${at.offset}`;
    if (detail.seen.has(key)) return undefined;
    detail.seen.add(key);
    return detail;
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
    const d = this.#selected === undefined ? undefined : this.#details.get(this.#selected);
    const detail: SuiteDetail | undefined = d && {
      suiteId: d.suiteId,
      tests: [...d.tests.values()].sort((a, b) => b.id - a.id),
      events: d.events.slice(-this.#maxItems),
      logs: d.logs.slice(-this.#maxItems),
      eventCounts: { ...d.eventCounts },
      logCounts: { ...d.logCounts },
      missing: d.missing,
    };
    return { suites, suitesLoaded: this.#suitesLoaded, detail, rate: this.#rate() };
  }
}

function newDetail(suiteId: number): MutableDetail {
  return {
    suiteId,
    tests: new Map(),
    seen: new Set(),
    events: [],
    logs: [],
    eventCounts: {},
    logCounts: emptyLogCounts(),
    missing: false,
  };
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

function isBehind(incoming: TestRun, current: TestRun): boolean {
  return !FINISHED_STATUSES.has(incoming.status) && incoming.progressPercent < current.progressPercent;
}

function fromSummary(r: SuiteExecutionSummary): Suite {
  return {
    id: r.id,
    name: r.suite_name,
    agent: r.agent_name,
    status: r.status,
    progressPercent: r.progress_percent,
    totalTests: r.total_tests,
    completedTests: r.completed_tests,
    passedTests: r.passed_tests,
    failedTests: r.failed_tests,
    successRate: r.success_rate,
    durationSeconds: r.duration_seconds,
    startedAt: r.started_at,
  };
}

function fromTestRecord(t: TestExecutionRecord): TestRun {
  return {
    id: t.id,
    testId: t.test_id,
    name: t.test_name,
    status: t.status,
    progressPercent: t.progress_percent,
    currentRun: t.current_run,
    totalRuns: t.total_runs,
    message: t.message,
    score: t.score,
    durationSeconds: t.duration_seconds,
    error: t.error,
  };
}
