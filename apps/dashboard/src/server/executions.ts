import type { DataMessage, EventPayload, LogEntryPayload, LogLevel } from '@atp/ws-protocol';

/** One test execution as `GET /api/executions/:id` shows it. */
export interface TestExecutionRecord {
  type: 'test_execution';
  id: number;
  test_execution_id: number;
  suite_execution_id: number;
  test_id: string;
  test_name: string | undefined;
  status: string;
  progress_percent: number;
  current_run: number | undefined;
  total_runs: number | undefined;
  message: string | undefined;
  success: boolean | undefined;
  score: number | null | undefined;
  duration_seconds: number | undefined;
  error: string | undefined;
  started_at: string | undefined;
  completed_at: string | undefined;
  /** The last `delta_update` sequence of this resource: deltas continue after it. */
  sequence: number;
  events: number;
  recent_events: EventPayload[];
}

/** One suite execution as `GET /api/executions` lists it. */
export interface SuiteExecutionSummary {
  type: 'suite_execution';
  id: number;
  suite_execution_id: number;
  suite_name: string | undefined;
  agent_name: string | undefined;
  status: string;
  progress_percent: number;
  total_tests: number;
  completed_tests: number;
  passed_tests: number;
  failed_tests: number;
  success_rate: number | undefined;
  duration_seconds: number | undefined;
  started_at: string | undefined;
  completed_at: string | undefined;
  /** The last `delta_update` sequence of this resource. */
  sequence: number;
  events: number;
  /** Events of the run by `event_type`. */
  event_types: Record<string, number>;
  logs: Record<LogLevel, number>;
}

/** A suite execution with its tests and latest log lines, as `GET /api/executions/:id` shows it. */
export interface SuiteExecutionRecord extends SuiteExecutionSummary {
  tests: TestExecutionRecord[];
  recent_logs: LogEntryPayload[];
}

/** How many of the latest events and log lines a record keeps. */
export interface RecentLimits {
  /** Latest events kept per test execution. @default 20 */
  recentEvents?: number;
  /** Latest log lines kept per suite execution. @default 50 */
  recentLogs?: number;
}

/** Options of {@link ExecutionStore}. */
export interface ExecutionStoreOptions extends RecentLimits {
  /** Suite executions kept; the oldest finished ones are forgotten first. @default 200 */
  maxSuites?: number;
}

/** The resource kind of a suite execution (`hub.resources`, `useResource`). */
export const SUITE_EXECUTION = 'suite_execution';

/**
 * The execution id a `delta_update`'s `resource_id` names, or `undefined`: an integer n ≥ 0 given as
 * a number or exactly as `String(n)` ("500"); any other form ("0500", " 500", "5e2", "500.0") names
 * no execution. This is the rule of a page's resource handle (a delta of its kind is its own when
 * `String(resource_id)` equals its id), so the server's store and the page apply the same deltas.
 */
export function executionIdOf(resourceId: number | string): number | undefined {
  const id =
    typeof resourceId === 'number'
      ? resourceId
      : /^(?:0|[1-9]\d*)$/.test(resourceId)
        ? Number(resourceId)
        : Number.NaN;
  return Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

const FINISHED = new Set(['completed', 'failed', 'error', 'cancelled']);

/** A new suite execution record, before its first message. */
export function newSuiteRecord(id: number): SuiteExecutionRecord {
  return {
    type: 'suite_execution',
    id,
    suite_execution_id: id,
    suite_name: undefined,
    agent_name: undefined,
    status: 'pending',
    progress_percent: 0,
    total_tests: 0,
    completed_tests: 0,
    passed_tests: 0,
    failed_tests: 0,
    success_rate: undefined,
    duration_seconds: undefined,
    started_at: undefined,
    completed_at: undefined,
    sequence: 0,
    events: 0,
    event_types: {},
    logs: { debug: 0, info: 0, warning: 0, error: 0, critical: 0 },
    tests: [],
    recent_logs: [],
  };
}

function testOf(suite: SuiteExecutionRecord, id: number, testId: string): TestExecutionRecord {
  let test = suite.tests.find((t) => t.id === id);
  if (!test) {
    test = {
      type: 'test_execution',
      id,
      test_execution_id: id,
      suite_execution_id: suite.id,
      test_id: testId,
      test_name: undefined,
      status: 'pending',
      progress_percent: 0,
      current_run: undefined,
      total_runs: undefined,
      message: undefined,
      success: undefined,
      score: undefined,
      duration_seconds: undefined,
      error: undefined,
      started_at: undefined,
      completed_at: undefined,
      sequence: 0,
      events: 0,
      recent_events: [],
    };
    suite.tests.push(test);
  }
  return test;
}

/**
 * Applies one data message to one suite execution record, in place; returns
 * whether the message concerned it. The server's {@link ExecutionStore} and
 * the page's live copy of the selected suite (`useResource`) both use it, so
 * they agree.
 */
export function applyToSuite(
  suite: SuiteExecutionRecord,
  message: DataMessage,
  limits: RecentLimits = {},
): boolean {
  switch (message.type) {
    case 'suite_progress': {
      const p = message.payload;
      if (p.suite_execution_id !== suite.id) return false;
      Object.assign(suite, {
        suite_name: p.suite_name ?? suite.suite_name,
        agent_name: p.agent_name ?? suite.agent_name,
        status: p.status,
        progress_percent: p.progress_percent,
        total_tests: p.total_tests,
        completed_tests: p.completed_tests,
        passed_tests: p.passed_tests ?? suite.passed_tests,
        failed_tests: p.failed_tests ?? suite.failed_tests,
      });
      return true;
    }
    case 'suite_completed': {
      const p = message.payload;
      if (p.suite_execution_id !== suite.id) return false;
      Object.assign(suite, {
        suite_name: p.suite_name ?? suite.suite_name,
        agent_name: p.agent_name ?? suite.agent_name,
        status: p.status ?? 'completed',
        progress_percent: 100,
        total_tests: p.total_tests,
        completed_tests: p.passed_tests + p.failed_tests,
        passed_tests: p.passed_tests,
        failed_tests: p.failed_tests,
        success_rate: p.success_rate,
        duration_seconds: p.duration_seconds,
      });
      return true;
    }
    case 'test_progress': {
      const p = message.payload;
      if (p.suite_execution_id !== suite.id) return false;
      const test = testOf(suite, p.test_execution_id, p.test_id);
      Object.assign(test, {
        test_name: p.test_name ?? test.test_name,
        status: p.status,
        progress_percent: p.progress_percent,
        current_run: p.current_run ?? test.current_run,
        total_runs: p.total_runs ?? test.total_runs,
        message: p.message ?? test.message,
      });
      return true;
    }
    case 'test_completed': {
      const p = message.payload;
      if (p.suite_execution_id !== suite.id) return false;
      const test = testOf(suite, p.test_execution_id, p.test_id);
      Object.assign(test, {
        test_name: p.test_name ?? test.test_name,
        status: p.success ? 'passed' : 'failed',
        progress_percent: 100,
        success: p.success,
        score: p.score,
        duration_seconds: p.duration_seconds,
        error: p.error,
      });
      return true;
    }
    case 'delta_update': {
      const p = message.payload;
      const id = executionIdOf(p.resource_id);
      if (id === undefined) return false;
      let record: SuiteExecutionRecord | TestExecutionRecord | undefined;
      if (p.resource_type === SUITE_EXECUTION) {
        if (id !== suite.id) return false;
        // A delta of the current sequence again (published twice): not applied, as a page's resource
        // handle does not apply it either (its version is this sequence: it skips it or refetches).
        if (p.sequence === suite.sequence && (p.base_sequence ?? p.sequence - 1) === suite.sequence - 1)
          return false;
        record = suite;
      } else if (p.resource_type === 'test_execution') {
        record = suite.tests.find((t) => t.id === id);
      }
      if (!record) return false;
      record.sequence = p.sequence;
      for (const key of ['status', 'started_at', 'completed_at', 'score', 'duration_seconds'] as const) {
        if (key in p.changes) Object.assign(record, { [key]: p.changes[key] });
      }
      return true;
    }
    case 'event': {
      const p = message.payload;
      if (p.suite_execution_id !== suite.id) return false;
      suite.events += 1;
      suite.event_types[p.event_type] = (suite.event_types[p.event_type] ?? 0) + 1;
      const test = suite.tests.find((t) => t.id === p.test_execution_id);
      if (test) {
        test.events += 1;
        test.recent_events.push(p);
        if (test.recent_events.length > (limits.recentEvents ?? 20)) test.recent_events.shift();
      }
      return true;
    }
    case 'log_entry': {
      const p = message.payload;
      if (p.suite_execution_id !== suite.id) return false;
      suite.logs[p.level] += 1;
      suite.recent_logs.push(p);
      if (suite.recent_logs.length > (limits.recentLogs ?? 50)) suite.recent_logs.shift();
      return true;
    }
    default:
      return false;
  }
}

/** Messages that make a suite execution known. */
const CREATES: ReadonlySet<string> = new Set([
  'suite_progress',
  'suite_completed',
  'test_progress',
  'test_completed',
]);

/**
 * The state of every execution, built from the data messages the hub
 * delivers (`hub.resources.follow`): `GET /api/executions`, and the
 * `suite_execution` resource a page holds live.
 */
export class ExecutionStore {
  readonly #suites = new Map<number, SuiteExecutionRecord>();
  /**
   * The suites that hold each test execution (a test announced under several suites is in each),
   * the one that announced it last at the end: `get` shows that one, a delta changes it in all.
   */
  readonly #testSuites = new Map<number, number[]>();
  readonly #maxSuites: number;
  readonly #limits: RecentLimits;

  constructor(options: ExecutionStoreOptions = {}) {
    this.#maxSuites = options.maxSuites ?? 200;
    this.#limits = { recentEvents: options.recentEvents ?? 20, recentLogs: options.recentLogs ?? 50 };
  }

  /** Applies published messages, in order. */
  apply(messages: readonly DataMessage[]): void {
    for (const message of messages) this.#applyOne(message);
  }

  /** Suite executions, newest first. */
  list(): SuiteExecutionSummary[] {
    return [...this.#suites.values()].reverse().map(({ tests: _tests, recent_logs: _logs, ...summary }) => ({
      ...summary,
      event_types: { ...summary.event_types },
      logs: { ...summary.logs },
    }));
  }

  /** A suite or test execution by id (they share one id space), or `undefined`. */
  get(id: number): SuiteExecutionRecord | TestExecutionRecord | undefined {
    const suite = this.#suites.get(id);
    if (suite) return structuredClone(suite);
    const suiteId = this.#testSuites.get(id)?.at(-1);
    const test =
      suiteId === undefined ? undefined : this.#suites.get(suiteId)?.tests.find((t) => t.id === id);
    return test ? structuredClone(test) : undefined;
  }

  #applyOne(message: DataMessage): void {
    if (message.type === 'delta_update') {
      // Each suite that holds the resource takes it, by the rule a page holding that suite applies.
      for (const suite of this.#suitesOf(message.payload)) applyToSuite(suite, message, this.#limits);
      return;
    }
    const suiteId = 'suite_execution_id' in message.payload ? message.payload.suite_execution_id : undefined;
    if (suiteId === undefined) return;
    let suite = this.#suites.get(suiteId);
    if (!suite) {
      if (!CREATES.has(message.type)) return;
      suite = newSuiteRecord(suiteId);
      this.#suites.set(suiteId, suite);
    }
    applyToSuite(suite, message, this.#limits);
    if (message.type === 'test_progress' || message.type === 'test_completed') {
      const testId = message.payload.test_execution_id;
      const suites = (this.#testSuites.get(testId) ?? []).filter((id) => id !== suiteId);
      suites.push(suiteId);
      this.#testSuites.set(testId, suites);
    } else if (message.type === 'suite_completed') {
      this.#evict();
    }
  }

  /** The suite executions a `delta_update` may change. */
  #suitesOf(delta: Extract<DataMessage, { type: 'delta_update' }>['payload']): SuiteExecutionRecord[] {
    const id = executionIdOf(delta.resource_id);
    if (id === undefined) return [];
    const ids =
      delta.resource_type === SUITE_EXECUTION
        ? [id]
        : delta.resource_type === 'test_execution'
          ? (this.#testSuites.get(id) ?? [])
          : [];
    return ids.flatMap((suiteId) => this.#suites.get(suiteId) ?? []);
  }

  /** Forgets the oldest finished suites (and their tests) beyond `maxSuites`. */
  #evict(): void {
    if (this.#suites.size <= this.#maxSuites) return;
    for (const [id, suite] of this.#suites) {
      if (this.#suites.size <= this.#maxSuites) break;
      if (!FINISHED.has(suite.status)) continue;
      for (const test of suite.tests) {
        const suites = this.#testSuites.get(test.id)?.filter((suiteId) => suiteId !== id) ?? [];
        if (suites.length > 0) this.#testSuites.set(test.id, suites);
        else this.#testSuites.delete(test.id);
      }
      this.#suites.delete(id);
    }
  }
}
