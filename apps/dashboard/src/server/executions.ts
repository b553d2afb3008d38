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
  logs: Record<LogLevel, number>;
}

/** A suite execution with its tests and latest log lines, as `GET /api/executions/:id` shows it. */
export interface SuiteExecutionRecord extends SuiteExecutionSummary {
  tests: TestExecutionRecord[];
  recent_logs: LogEntryPayload[];
}

/** Options of {@link ExecutionStore}. */
export interface ExecutionStoreOptions {
  /** Suite executions kept; the oldest finished ones are forgotten first. @default 200 */
  maxSuites?: number;
  /** Latest events kept per test execution. @default 20 */
  recentEvents?: number;
  /** Latest log lines kept per suite execution. @default 50 */
  recentLogs?: number;
}

const FINISHED = new Set(['completed', 'failed', 'error', 'cancelled']);

/**
 * The state of every execution, built from the data messages the runner
 * publishes: what a dashboard refetches after a `sequence_gap`.
 */
export class ExecutionStore {
  readonly #suites = new Map<number, SuiteExecutionRecord>();
  readonly #tests = new Map<number, TestExecutionRecord>();
  readonly #maxSuites: number;
  readonly #recentEvents: number;
  readonly #recentLogs: number;

  constructor(options: ExecutionStoreOptions = {}) {
    this.#maxSuites = options.maxSuites ?? 200;
    this.#recentEvents = options.recentEvents ?? 20;
    this.#recentLogs = options.recentLogs ?? 50;
  }

  /** Applies published messages, in order. */
  apply(messages: readonly DataMessage[]): void {
    for (const message of messages) this.#applyOne(message);
  }

  /** Suite executions, newest first. */
  list(): SuiteExecutionSummary[] {
    return [...this.#suites.values()].reverse().map(({ tests: _tests, recent_logs: _logs, ...summary }) => ({
      ...summary,
      logs: { ...summary.logs },
    }));
  }

  /** A suite or test execution by id (they share one id space), or `undefined`. */
  get(id: number): SuiteExecutionRecord | TestExecutionRecord | undefined {
    const suite = this.#suites.get(id);
    if (suite) return structuredClone(suite);
    const test = this.#tests.get(id);
    return test ? structuredClone(test) : undefined;
  }

  #applyOne(message: DataMessage): void {
    switch (message.type) {
      case 'suite_progress': {
        const p = message.payload;
        const suite = this.#suite(p.suite_execution_id);
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
        break;
      }
      case 'suite_completed': {
        const p = message.payload;
        const suite = this.#suite(p.suite_execution_id);
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
        this.#evict();
        break;
      }
      case 'test_progress': {
        const p = message.payload;
        const test = this.#test(p.test_execution_id, p.suite_execution_id, p.test_id);
        Object.assign(test, {
          test_name: p.test_name ?? test.test_name,
          status: p.status,
          progress_percent: p.progress_percent,
          current_run: p.current_run ?? test.current_run,
          total_runs: p.total_runs ?? test.total_runs,
          message: p.message ?? test.message,
        });
        break;
      }
      case 'test_completed': {
        const p = message.payload;
        const test = this.#test(p.test_execution_id, p.suite_execution_id, p.test_id);
        Object.assign(test, {
          test_name: p.test_name ?? test.test_name,
          status: p.success ? 'passed' : 'failed',
          progress_percent: 100,
          success: p.success,
          score: p.score,
          duration_seconds: p.duration_seconds,
          error: p.error,
        });
        break;
      }
      case 'delta_update': {
        const p = message.payload;
        const id = typeof p.resource_id === 'number' ? p.resource_id : Number(p.resource_id);
        const record =
          p.resource_type === 'test_execution'
            ? this.#tests.get(id)
            : p.resource_type === 'suite_execution'
              ? this.#suites.get(id)
              : undefined;
        if (!record) break;
        record.sequence = p.sequence;
        for (const key of ['status', 'started_at', 'completed_at', 'score', 'duration_seconds'] as const) {
          if (key in p.changes) Object.assign(record, { [key]: p.changes[key] });
        }
        break;
      }
      case 'event': {
        const p = message.payload;
        const suite = this.#suites.get(p.suite_execution_id);
        if (suite) suite.events += 1;
        const test = p.test_execution_id === undefined ? undefined : this.#tests.get(p.test_execution_id);
        if (test) {
          test.events += 1;
          test.recent_events.push(p);
          if (test.recent_events.length > this.#recentEvents) test.recent_events.shift();
        }
        break;
      }
      case 'log_entry': {
        const p = message.payload;
        const suite = p.suite_execution_id === undefined ? undefined : this.#suites.get(p.suite_execution_id);
        if (suite) {
          suite.logs[p.level] += 1;
          suite.recent_logs.push(p);
          if (suite.recent_logs.length > this.#recentLogs) suite.recent_logs.shift();
        }
        break;
      }
    }
  }

  #suite(id: number): SuiteExecutionRecord {
    let suite = this.#suites.get(id);
    if (!suite) {
      suite = {
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
        logs: { debug: 0, info: 0, warning: 0, error: 0, critical: 0 },
        tests: [],
        recent_logs: [],
      };
      this.#suites.set(id, suite);
    }
    return suite;
  }

  #test(id: number, suiteId: number, testId: string): TestExecutionRecord {
    let test = this.#tests.get(id);
    if (!test) {
      test = {
        type: 'test_execution',
        id,
        test_execution_id: id,
        suite_execution_id: suiteId,
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
      this.#tests.set(id, test);
      this.#suite(suiteId).tests.push(test);
    }
    return test;
  }

  /** Forgets the oldest finished suites (and their tests) beyond `maxSuites`. */
  #evict(): void {
    if (this.#suites.size <= this.#maxSuites) return;
    for (const [id, suite] of this.#suites) {
      if (this.#suites.size <= this.#maxSuites) break;
      if (!FINISHED.has(suite.status)) continue;
      for (const test of suite.tests) this.#tests.delete(test.id);
      this.#suites.delete(id);
    }
  }
}
