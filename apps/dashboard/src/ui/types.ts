import type { DataPayload } from '@atp/ws-react';

import type {
  SuiteExecutionRecord,
  SuiteExecutionSummary,
  TestExecutionRecord,
} from '../server/executions.js';

export type { SuiteExecutionRecord, SuiteExecutionSummary, TestExecutionRecord };

export type SuiteProgressPayload = DataPayload<'suite_progress'>;
export type SuiteCompletedPayload = DataPayload<'suite_completed'>;
export type TestProgressPayload = DataPayload<'test_progress'>;
export type TestCompletedPayload = DataPayload<'test_completed'>;
export type EventPayload = DataPayload<'event'>;
export type LogEntryPayload = DataPayload<'log_entry'>;
export type DeltaUpdatePayload = DataPayload<'delta_update'>;
export type LogLevel = LogEntryPayload['level'];

/** The log levels, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warning', 'error', 'critical'];

/** The ATP event types the filter offers before any arrives (others appear as they do). */
export const KNOWN_EVENT_TYPES: readonly string[] = [
  'llm_request',
  'llm_response',
  'reasoning',
  'tool_call',
  'error',
];

/** Statuses after which nothing changes. */
export const FINISHED_STATUSES: ReadonlySet<string> = new Set([
  'passed',
  'failed',
  'completed',
  'error',
  'timeout',
  'cancelled',
  'skipped',
]);

/** One suite execution as the page shows it. */
export interface Suite {
  readonly id: number;
  readonly name: string | undefined;
  readonly agent: string | undefined;
  readonly status: string;
  readonly progressPercent: number;
  readonly totalTests: number;
  readonly completedTests: number;
  readonly passedTests: number;
  readonly failedTests: number;
  readonly successRate: number | undefined;
  readonly durationSeconds: number | undefined;
  readonly startedAt: string | undefined;
}

/** One test execution of the selected suite. */
export interface TestRun {
  readonly id: number;
  readonly testId: string;
  readonly name: string | undefined;
  readonly status: string;
  readonly progressPercent: number;
  readonly currentRun: number | undefined;
  readonly totalRuns: number | undefined;
  readonly message: string | undefined;
  readonly score: number | null | undefined;
  readonly durationSeconds: number | undefined;
  readonly error: string | undefined;
}

/** One ATP event of the selected suite. */
export interface EventItem {
  /** Its stream position, `epoch:offset`: unique. */
  readonly key: string;
  readonly testExecutionId: number | undefined;
  readonly type: string;
  readonly timestamp: string;
  readonly durationMs: number | undefined;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** One log line of the selected suite. */
export interface LogItem {
  /** Its stream position, `epoch:offset`: unique. */
  readonly key: string;
  readonly testExecutionId: number | undefined;
  readonly level: LogLevel;
  readonly message: string;
  readonly timestamp: string;
  readonly source: string | undefined;
}

/** The selected suite's event stream and log tail, as replayed from the start of its run. */
export interface SuiteFeed {
  readonly suiteId: number;
  /** Oldest first; the newest `maxItems` are kept. */
  readonly events: readonly EventItem[];
  /** Oldest first; the newest `maxItems` are kept. */
  readonly logs: readonly LogItem[];
}

/** What the detail of the selected suite shows. */
export interface SuiteDetail {
  readonly suiteId: number;
  /** The newest first (the running one on top). */
  readonly tests: readonly TestRun[];
  readonly events: readonly EventItem[];
  readonly logs: readonly LogItem[];
  /** Every event of the run, by type (not capped). */
  readonly eventCounts: Readonly<Record<string, number>>;
  /** Every log line of the run, by level (not capped). */
  readonly logCounts: Readonly<Record<LogLevel, number>>;
}

/** A suite of `GET /api/executions` (or the selected suite's record) as the page shows it. */
export function toSuite(r: SuiteExecutionSummary): Suite {
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

/** A test of the selected suite's record as the page shows it. */
export function toTestRun(t: TestExecutionRecord): TestRun {
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
