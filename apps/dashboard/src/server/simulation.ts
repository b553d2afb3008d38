import type { DataMessage, LogLevel } from '@atp/ws-protocol';
import type { Clock } from './clock.js';
import type { Random } from './random.js';
import { type PlannedSuite, type PlannedTest, THOUGHTS } from './scenario.js';

/** What one suite simulation needs from the runner. */
export interface SimulationContext {
  readonly clock: Clock;
  readonly random: Random;
  readonly signal: AbortSignal;
  /** A new execution id (suites and tests share one id space). */
  nextId(): number;
  /** Publishes messages in order; resolves once they are published (or dropped after a logged failure). */
  emit(messages: DataMessage[]): Promise<void>;
}

/** Score a test needs to pass. */
export const PASS_THRESHOLD = 0.7;

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const clamp01 = (value: number) => Math.min(1, Math.max(0, value));

/** Runs one suite execution to its end (or until the signal aborts), publishing what a real ATP runner would. */
export async function simulateSuite(ctx: SimulationContext, plan: PlannedSuite): Promise<void> {
  const suiteId = ctx.nextId();
  const suite = new SuiteEmitter(ctx, suiteId, plan);
  const startedAt = ctx.clock.now();
  await suite.start();
  let passed = 0;
  let failed = 0;
  for (const test of plan.tests) {
    if (ctx.signal.aborted) return;
    const result = await simulateTest(ctx, suite, test);
    if (!result) return;
    if (result.success) passed += 1;
    else failed += 1;
    await suite.progress(passed, failed);
  }
  await suite.complete(passed, failed, (ctx.clock.now() - startedAt) / 1000);
}

/** Builds the suite-level messages and keeps the suite's delta sequence. */
class SuiteEmitter {
  #deltaSequence = 0;

  constructor(
    readonly ctx: SimulationContext,
    readonly id: number,
    readonly plan: PlannedSuite,
  ) {}

  get total(): number {
    return this.plan.tests.length;
  }

  timestamp(): string {
    return new Date(this.ctx.clock.now()).toISOString();
  }

  log(level: LogLevel, message: string, source: string, testExecutionId?: number): DataMessage {
    return {
      type: 'log_entry',
      payload: {
        suite_execution_id: this.id,
        ...(testExecutionId === undefined ? {} : { test_execution_id: testExecutionId }),
        level,
        message,
        timestamp: this.timestamp(),
        source,
      },
    };
  }

  delta(changes: Record<string, unknown>): DataMessage {
    this.#deltaSequence += 1;
    return {
      type: 'delta_update',
      payload: {
        resource_type: 'suite_execution',
        resource_id: this.id,
        sequence: this.#deltaSequence,
        changes,
      },
    };
  }

  #progressMessage(passed: number, failed: number): DataMessage {
    const completed = passed + failed;
    return {
      type: 'suite_progress',
      payload: {
        suite_execution_id: this.id,
        suite_name: this.plan.template.name,
        agent_name: this.plan.agent.name,
        status: 'running',
        progress_percent: round((completed / this.total) * 100, 1),
        completed_tests: completed,
        total_tests: this.total,
        passed_tests: passed,
        failed_tests: failed,
      },
    };
  }

  start(): Promise<void> {
    const { template, agent } = this.plan;
    return this.ctx.emit([
      this.#progressMessage(0, 0),
      this.delta({
        status: 'running',
        suite_name: template.name,
        agent_name: agent.name,
        total_tests: this.total,
        started_at: this.timestamp(),
      }),
      this.log(
        'info',
        `Suite '${template.name}' started: ${this.total} tests with agent ${agent.name}`,
        'runner',
      ),
    ]);
  }

  progress(passed: number, failed: number): Promise<void> {
    return this.ctx.emit([
      this.#progressMessage(passed, failed),
      this.delta({ completed_tests: passed + failed, passed_tests: passed, failed_tests: failed }),
    ]);
  }

  complete(passed: number, failed: number, durationSeconds: number): Promise<void> {
    const successRate = round(passed / this.total, 3);
    const duration = round(durationSeconds, 1);
    const { template, agent } = this.plan;
    return this.ctx.emit([
      {
        type: 'suite_completed',
        payload: {
          suite_execution_id: this.id,
          suite_name: template.name,
          agent_name: agent.name,
          status: 'completed',
          success_rate: successRate,
          total_tests: this.total,
          passed_tests: passed,
          failed_tests: failed,
          duration_seconds: duration,
        },
      },
      this.delta({
        status: 'completed',
        success_rate: successRate,
        duration_seconds: duration,
        completed_at: this.timestamp(),
      }),
      this.log(
        successRate >= PASS_THRESHOLD ? 'info' : 'warning',
        `Suite '${template.name}' completed: ${passed}/${this.total} passed (${Math.round(successRate * 100)}%) in ${duration} s`,
        'runner',
      ),
    ]);
  }
}

/** Runs one test: its runs, their steps, events and logs. Resolves `undefined` when aborted. */
async function simulateTest(
  ctx: SimulationContext,
  suite: SuiteEmitter,
  test: PlannedTest,
): Promise<{ success: boolean } | undefined> {
  const { clock, random, signal } = ctx;
  const { agent, template } = suite.plan;
  const id = ctx.nextId();
  const startedAt = clock.now();
  let deltaSequence = 0;
  let eventSequence = 0;
  const delta = (changes: Record<string, unknown>): DataMessage => {
    deltaSequence += 1;
    return {
      type: 'delta_update',
      payload: { resource_type: 'test_execution', resource_id: id, sequence: deltaSequence, changes },
    };
  };
  const event = (eventType: string, payload: Record<string, unknown>, durationMs?: number): DataMessage => {
    eventSequence += 1;
    return {
      type: 'event',
      payload: {
        suite_execution_id: suite.id,
        test_execution_id: id,
        sequence: eventSequence,
        event_type: eventType,
        timestamp: suite.timestamp(),
        payload,
        ...(durationMs === undefined ? {} : { duration_ms: round(durationMs, 1) }),
      },
    };
  };
  const progress = (percent: number, run: number, message: string): DataMessage => ({
    type: 'test_progress',
    payload: {
      suite_execution_id: suite.id,
      test_execution_id: id,
      test_id: test.testId,
      test_name: test.testName,
      status: 'running',
      progress_percent: round(percent, 1),
      current_run: run,
      total_runs: test.totalRuns,
      message,
    },
  });
  const log = (level: LogLevel, message: string, source: string) => suite.log(level, message, source, id);
  /** Waits `ms` of simulated time; false when the runner stopped meanwhile. */
  const wait = async (ms: number) => {
    await clock.sleep(ms * agent.pace, signal);
    return !signal.aborted;
  };

  await ctx.emit([
    progress(0, 0, 'Starting run 1'),
    delta({
      status: 'running',
      suite_execution_id: suite.id,
      test_id: test.testId,
      test_name: test.testName,
      total_runs: test.totalRuns,
      started_at: suite.timestamp(),
    }),
    log('info', `Starting test execution: ${test.testName} (${test.totalRuns} runs)`, 'runner'),
  ]);

  const scores: number[] = [];
  for (let run = 1; run <= test.totalRuns; run++) {
    const steps = random.int(1, 4);
    let tokens = random.int(400, 1800);
    let aborted = false;
    await ctx.emit([
      delta({ current_run: run }),
      log('debug', `Run ${run}/${test.totalRuns} started with ${steps} planned steps`, 'agent'),
    ]);
    for (let step = 1; step <= steps && !aborted; step++) {
      const requestMs = random.float(150, 900);
      if (!(await wait(requestMs))) return undefined;
      const request: DataMessage[] = [
        event(
          'llm_request',
          { model: agent.model, messages: 2 + step * 2, prompt_tokens: tokens },
          requestMs,
        ),
      ];
      if (random.chance(0.06)) {
        request.push(log('warning', 'LLM rate limited (429); retrying in 1.0 s', 'agent'));
      }
      await ctx.emit(request);

      const responseMs = random.float(300, 1600);
      if (!(await wait(responseMs))) return undefined;
      const completionTokens = random.int(40, 600);
      tokens += completionTokens;
      const useTool = step < steps || random.chance(0.3);
      const answer: DataMessage[] = [
        event(
          'llm_response',
          {
            model: agent.model,
            completion_tokens: completionTokens,
            finish_reason: useTool ? 'tool_calls' : 'stop',
          },
          responseMs,
        ),
      ];
      if (random.chance(0.5)) {
        answer.push(event('reasoning', { text: random.pick(THOUGHTS) }, random.float(20, 300)));
      }
      answer.push(log('debug', `Context is now ${tokens} tokens`, 'agent'));
      await ctx.emit(answer);

      if (useTool) {
        const tool = random.pick(template.tools);
        const toolMs = random.chance(0.1) ? random.float(1500, 3500) : random.float(80, 1200);
        if (!(await wait(toolMs))) return undefined;
        const failedTool = random.chance(0.06);
        const call: DataMessage[] = [
          event(
            'tool_call',
            { tool, arguments: toolArguments(tool, test.testName), status: failedTool ? 'error' : 'ok' },
            toolMs,
          ),
        ];
        if (toolMs > 1500) {
          call.push(log('warning', `Tool ${tool} was slow: ${(toolMs / 1000).toFixed(1)} s`, `tool:${tool}`));
        }
        if (failedTool) {
          call.push(
            event('error', { tool, message: 'upstream returned HTTP 502' }),
            log('error', `Tool ${tool} failed: upstream returned HTTP 502`, `tool:${tool}`),
          );
        }
        await ctx.emit(call);
      }

      const batch: DataMessage[] = [];
      if (random.chance(0.03)) {
        aborted = true;
        batch.push(log('critical', `Agent exceeded its token budget in run ${run}; run aborted`, 'runner'));
      }
      const percent = ((run - 1 + step / steps) / test.totalRuns) * 100;
      batch.unshift(
        progress(percent, run, `Run ${run}/${test.totalRuns}: executing step ${step} of ${steps}`),
      );
      await ctx.emit(batch);
    }
    const score = aborted ? 0 : round(clamp01(agent.skill + random.float(-0.3, 0.2)));
    scores.push(score);
    await ctx.emit([log('info', `Run ${run}/${test.totalRuns} scored ${score.toFixed(2)}`, 'evaluator')]);
  }

  const score = round(scores.reduce((sum, s) => sum + s, 0) / scores.length);
  const success = score >= PASS_THRESHOLD;
  const duration = round((clock.now() - startedAt) / 1000, 1);
  await ctx.emit([
    {
      type: 'test_completed',
      payload: {
        suite_execution_id: suite.id,
        test_execution_id: id,
        test_id: test.testId,
        test_name: test.testName,
        success,
        score,
        duration_seconds: duration,
        ...(success
          ? {}
          : { error: `score ${score.toFixed(2)} below threshold ${PASS_THRESHOLD.toFixed(2)}` }),
      },
    },
    delta({
      status: success ? 'passed' : 'failed',
      score,
      success,
      duration_seconds: duration,
      completed_at: suite.timestamp(),
    }),
    success
      ? log('info', `Test passed with score ${score.toFixed(2)} in ${duration} s`, 'evaluator')
      : log('error', `Test failed: score ${score.toFixed(2)} below threshold ${PASS_THRESHOLD}`, 'evaluator'),
  ]);
  return { success };
}

function toolArguments(tool: string, testName: string): Record<string, unknown> {
  switch (tool) {
    case 'sql_query':
      return { query: 'SELECT region, SUM(amount) FROM orders GROUP BY region' };
    case 'web_search':
    case 'search_kb':
    case 'search_orders':
      return { query: testName.toLowerCase() };
    case 'read_file':
    case 'grep':
      return { path: 'src/handlers/orders.ts' };
    case 'http_request':
    case 'fetch_page':
      return { method: 'GET', url: 'https://example.test/api/session' };
    default:
      return { input: testName };
  }
}
