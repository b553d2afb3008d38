import { type DataMessage, DataMessageSchema, LOG_LEVELS } from '@atp/ws-protocol';
import { describe, expect, it, vi } from 'vitest';
import type { Clock } from '../clock.js';
import { ExecutionStore, type SuiteExecutionRecord, type TestExecutionRecord } from '../executions.js';
import { SimulatedRunner, type SimulatedRunnerOptions } from '../runner.js';
import { AGENTS } from '../scenario.js';

/** Simulated time that advances by each sleep and never waits on the wall clock. */
function virtualClock(start = Date.UTC(2024, 0, 15, 10, 30)): Clock {
  let now = start;
  return {
    now: () => now,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        now += ms;
        setImmediate(resolve);
      }),
  };
}

async function runToEnd(options: Partial<SimulatedRunnerOptions> = {}) {
  const published: DataMessage[] = [];
  const store = new ExecutionStore();
  const runner = new SimulatedRunner({
    publish: async (messages) => {
      published.push(...messages);
    },
    store,
    clock: virtualClock(),
    seed: 42,
    maxSuites: 4,
    initialSuites: 2,
    maxConcurrentSuites: 2,
    ...options,
  });
  runner.start();
  await runner.finished();
  return { published, store, runner };
}

const ofType = <T extends DataMessage['type']>(messages: DataMessage[], type: T) =>
  messages.filter((m): m is Extract<DataMessage, { type: T }> => m.type === type);

describe('SimulatedRunner', () => {
  it('publishes only messages that pass the protocol schemas', async () => {
    const { published } = await runToEnd();
    expect(published.length).toBeGreaterThan(500);
    for (const message of published) expect(DataMessageSchema.safeParse(message).error).toBeUndefined();
  });

  it('runs suites of 5 to 20 tests, each with several runs, for the known agents', async () => {
    const { published } = await runToEnd({ maxSuites: 6, maxConcurrentSuites: 3, initialSuites: 3 });
    const completed = ofType(published, 'suite_completed');
    expect(completed).toHaveLength(6);
    const agents = new Set(completed.map((m) => m.payload.agent_name));
    expect(agents.size).toBeGreaterThanOrEqual(2);
    for (const agent of agents) expect(AGENTS.map((a) => a.name)).toContain(agent);
    for (const suite of completed) {
      const p = suite.payload;
      expect(p.total_tests).toBeGreaterThanOrEqual(5);
      expect(p.total_tests).toBeLessThanOrEqual(20);
      expect(p.passed_tests + p.failed_tests).toBe(p.total_tests);
      expect(p.success_rate).toBeCloseTo(p.passed_tests / p.total_tests, 3);
      const tests = ofType(published, 'test_completed').filter(
        (m) => m.payload.suite_execution_id === p.suite_execution_id,
      );
      expect(tests).toHaveLength(p.total_tests);
      expect(tests.filter((t) => t.payload.success)).toHaveLength(p.passed_tests);
      expect(p.duration_seconds).toBeGreaterThan(0);
    }
    const runs = ofType(published, 'test_progress').map((m) => m.payload.total_runs ?? 0);
    expect(Math.min(...runs)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...runs)).toBeGreaterThan(2);
  });

  it('reports test progress that only moves forward, then a completion with a score', async () => {
    const { published } = await runToEnd();
    const byTest = new Map<number, DataMessage[]>();
    for (const m of published) {
      if (m.type !== 'test_progress' && m.type !== 'test_completed') continue;
      const list = byTest.get(m.payload.test_execution_id) ?? [];
      list.push(m);
      byTest.set(m.payload.test_execution_id, list);
    }
    expect(byTest.size).toBeGreaterThan(10);
    for (const messages of byTest.values()) {
      const last = messages.at(-1)!;
      expect(last.type).toBe('test_completed');
      const progress = ofType(messages, 'test_progress').map((m) => m.payload);
      expect(progress.length).toBeGreaterThan(2);
      for (let i = 1; i < progress.length; i++) {
        expect(progress[i]!.progress_percent).toBeGreaterThanOrEqual(progress[i - 1]!.progress_percent);
        expect(progress[i]!.current_run!).toBeGreaterThanOrEqual(progress[i - 1]!.current_run!);
      }
      expect(progress.some((p) => /^Run \d+\/\d+: executing step \d+ of \d+$/.test(p.message ?? ''))).toBe(
        true,
      );
      if (last.type !== 'test_completed') continue;
      const { score, success } = last.payload;
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
      expect(success).toBe((score ?? 0) >= 0.7);
    }
  });

  it('emits tool_call, llm_request, llm_response and reasoning events with durations and per-test sequences', async () => {
    const { published } = await runToEnd();
    const events = ofType(published, 'event').map((m) => m.payload);
    const types = new Set(events.map((e) => e.event_type));
    for (const type of ['tool_call', 'llm_request', 'llm_response', 'reasoning'])
      expect(types).toContain(type);
    for (const event of events.filter((e) => e.event_type !== 'error')) {
      expect(event.duration_ms).toBeGreaterThan(0);
    }
    expect(events.find((e) => e.event_type === 'tool_call')?.payload).toMatchObject({
      tool: expect.any(String),
      arguments: expect.any(Object),
    });
    const sequences = new Map<number, number[]>();
    for (const event of events) {
      const list = sequences.get(event.test_execution_id!) ?? [];
      list.push(event.sequence!);
      sequences.set(event.test_execution_id!, list);
    }
    for (const list of sequences.values()) expect(list).toEqual(list.map((_, i) => i + 1));
  });

  it('logs at every level', async () => {
    const { published } = await runToEnd({ maxSuites: 6, maxConcurrentSuites: 3, initialSuites: 3 });
    const levels = new Set(ofType(published, 'log_entry').map((m) => m.payload.level));
    expect([...levels].sort()).toEqual([...LOG_LEVELS].sort());
  });

  it('sends delta updates of test executions with a gapless sequence per resource', async () => {
    const { published } = await runToEnd();
    const deltas = ofType(published, 'delta_update').map((m) => m.payload);
    expect(new Set(deltas.map((d) => d.resource_type))).toEqual(
      new Set(['test_execution', 'suite_execution']),
    );
    const byResource = new Map<string, typeof deltas>();
    for (const delta of deltas) {
      const key = `${delta.resource_type}:${delta.resource_id}`;
      byResource.set(key, [...(byResource.get(key) ?? []), delta]);
    }
    const testIds = new Set(ofType(published, 'test_completed').map((m) => m.payload.test_execution_id));
    for (const id of testIds) {
      const list = byResource.get(`test_execution:${id}`)!;
      expect(list.map((d) => d.sequence)).toEqual(list.map((_, i) => i + 1));
      expect(list[0]?.changes).toMatchObject({ status: 'running' });
      expect(list.at(-1)?.changes).toMatchObject({ status: expect.stringMatching(/^(passed|failed)$/) });
    }
  });

  it('starts new suites over time, once running ones finish', async () => {
    const { published, runner } = await runToEnd({ maxSuites: 4, initialSuites: 2, maxConcurrentSuites: 2 });
    expect(runner.suitesStarted).toBe(4);
    const firstCompletion = published.findIndex((m) => m.type === 'suite_completed');
    const starts = published
      .map((m, index) => ({ m, index }))
      .filter(({ m }) => m.type === 'suite_progress' && m.payload.completed_tests === 0);
    expect(starts).toHaveLength(4);
    expect(starts.filter(({ index }) => index > firstCompletion)).toHaveLength(2);
  });

  it('keeps the state of every execution in the store, as published', async () => {
    const { published, store } = await runToEnd();
    const suites = store.list();
    expect(suites).toHaveLength(4);
    for (const summary of suites) {
      expect(summary).toMatchObject({ type: 'suite_execution', status: 'completed', progress_percent: 100 });
      const suite = store.get(summary.id) as SuiteExecutionRecord;
      expect(suite.tests).toHaveLength(suite.total_tests);
      expect(suite.started_at).toMatch(/^2024-01-15T/);
      expect(suite.completed_at).toBeDefined();
      expect(Object.values(suite.logs).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      for (const test of suite.tests) {
        expect(test.status).toMatch(/^(passed|failed)$/);
        const lastDelta = ofType(published, 'delta_update')
          .filter((m) => m.payload.resource_type === 'test_execution' && m.payload.resource_id === test.id)
          .at(-1);
        expect(test.sequence).toBe(lastDelta?.payload.sequence);
        const alone = store.get(test.id) as TestExecutionRecord;
        expect(alone).toMatchObject({
          type: 'test_execution',
          suite_execution_id: suite.id,
          score: test.score,
        });
        expect(alone.recent_events.length).toBeGreaterThan(0);
      }
    }
  });

  it('stops where it is and publishes nothing after stop()', async () => {
    const published: DataMessage[] = [];
    const runner = new SimulatedRunner({
      publish: async (messages) => {
        published.push(...messages);
      },
      clock: virtualClock(),
      seed: 1,
    });
    runner.start();
    await vi.waitFor(() => expect(published.length).toBeGreaterThan(50));
    await runner.stop();
    const count = published.length;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(published.length).toBe(count);
    expect(runner.activeSuites).toBe(0);
  });

  it('keeps simulating when publishing fails, logging the first failure and then every 100th', async () => {
    const warn = vi.fn();
    let failures = 0;
    const store = new ExecutionStore();
    const runner = new SimulatedRunner({
      // The broker is down for the first 150 publishes, then back.
      publish: async () => {
        if (failures === 150) return;
        failures += 1;
        throw new Error('broker down');
      },
      testsPerSuite: [20, 20],
      store,
      clock: virtualClock(),
      seed: 3,
      maxSuites: 1,
      initialSuites: 1,
      logger: { warn },
    });
    runner.start();
    await runner.finished();
    expect(failures).toBe(150);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[0]?.[0]).toMatchObject({ failures: 1 });
    // Publishing works again: the rest of the suite reaches the store.
    expect(store.list()).toHaveLength(1);
    expect(store.list()[0]?.status).toBe('completed');
  });
});
