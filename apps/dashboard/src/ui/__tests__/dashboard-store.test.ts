import { describe, expect, it } from 'vitest';
import { DashboardStore } from '../dashboard-store.js';
import type { SuiteExecutionSummary } from '../types.js';

const store = () => new DashboardStore({ schedule: (flush) => flush() });
const at = (offset: number, epoch = 'e1') => ({ epoch, offset });

const progress = (completed: number, overrides: Record<string, unknown> = {}) => ({
  suite_execution_id: 1,
  suite_name: 'Auth Tests',
  agent_name: 'gpt-4',
  status: 'running' as const,
  progress_percent: completed * 10,
  completed_tests: completed,
  total_tests: 10,
  passed_tests: completed,
  failed_tests: 0,
  ...overrides,
});

const event = (sequence: number) => ({
  suite_execution_id: 1,
  test_execution_id: 2,
  sequence,
  event_type: 'tool_call',
  timestamp: '2024-01-15T10:30:05Z',
  payload: { tool: 'search' },
  duration_ms: 150.5,
});

const summary = (overrides: Partial<SuiteExecutionSummary>): SuiteExecutionSummary => ({
  type: 'suite_execution',
  id: 1,
  suite_execution_id: 1,
  suite_name: 'Auth Tests',
  agent_name: 'gpt-4',
  status: 'running',
  progress_percent: 0,
  total_tests: 10,
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
  ...overrides,
});

describe('DashboardStore', () => {
  it('never moves a suite back: a late progress report and a progress after completion are ignored', () => {
    const s = store();
    s.applySuiteProgress(progress(5));
    s.applySuiteProgress(progress(3));
    expect(s.getSnapshot().suites[0]).toMatchObject({ completedTests: 5 });
    s.applySuiteCompleted({
      suite_execution_id: 1,
      success_rate: 0.9,
      total_tests: 10,
      passed_tests: 9,
      failed_tests: 1,
    });
    s.applySuiteProgress(progress(9));
    expect(s.getSnapshot().suites[0]).toMatchObject({
      status: 'completed',
      completedTests: 10,
      successRate: 0.9,
    });
  });

  it('takes a new run under a reused id (another suite name) instead of keeping the old one', () => {
    const s = store();
    s.applySuiteCompleted({
      suite_execution_id: 1,
      suite_name: 'Auth Tests',
      success_rate: 1,
      total_tests: 2,
      passed_tests: 2,
      failed_tests: 0,
    });
    s.applySuiteProgress(progress(0, { suite_name: 'Code Review' }));
    expect(s.getSnapshot().suites[0]).toMatchObject({ name: 'Code Review', status: 'running' });
  });

  it('applies a message of the selected suite once per stream position, however often it comes', () => {
    const s = store();
    s.select(1);
    s.applyEvent(event(1), at(10));
    s.applyEvent(event(2), at(11));
    s.applyEvent(event(1), at(10));
    s.applyLog(
      { suite_execution_id: 1, level: 'info', message: 'hi', timestamp: '2024-01-15T10:30:00Z' },
      at(12),
    );
    s.applyLog(
      { suite_execution_id: 1, level: 'info', message: 'hi', timestamp: '2024-01-15T10:30:00Z' },
      at(13),
    );
    const feed = s.getSnapshot().feed!;
    expect(feed.events.map((e) => e.key)).toEqual(['e1:10', 'e1:11']);
    expect(feed.logs.map((l) => l.key)).toEqual(['e1:12', 'e1:13']);
  });

  it('keeps a suite feed across another selection, so selecting it again loses nothing and repeats nothing', () => {
    const s = store();
    s.select(1);
    s.applyEvent(event(1), at(10));
    s.select(7);
    s.applyEvent(event(2), at(11));
    expect(s.getSnapshot().feed).toMatchObject({ suiteId: 7, events: [] });
    s.select(1);
    s.applyEvent(event(1), at(10));
    s.applyEvent(event(3), at(12));
    expect(s.getSnapshot().feed?.events.map((e) => e.key)).toEqual(['e1:10', 'e1:11', 'e1:12']);
  });

  it('after reset() holds nothing of the old stream but keeps the selection', () => {
    const s = store();
    s.applySuiteProgress(progress(4));
    s.select(1);
    s.applyEvent(event(1), at(10));
    s.reset();
    expect(s.getSnapshot().suites).toEqual([]);
    expect(s.getSnapshot().feed).toMatchObject({ suiteId: 1, events: [] });
    s.applyEvent(event(1), at(10, 'e2'));
    expect(s.getSnapshot().feed?.events).toHaveLength(1);
  });

  it('replaces the suites with the REST list after a gap, and merges it otherwise', () => {
    const s = store();
    s.applySuiteProgress(progress(4));
    s.applySuiteProgress(progress(1, { suite_execution_id: 5 }));
    s.loadSuites([summary({ completed_tests: 2 })]);
    expect(s.getSnapshot().suites.map((x) => [x.id, x.completedTests])).toEqual([
      [5, 1],
      [1, 4],
    ]);
    s.loadSuites([summary({ completed_tests: 2 })], { replace: true });
    expect(s.getSnapshot().suites.map((x) => [x.id, x.completedTests])).toEqual([[1, 2]]);
  });

  it('shows changes at the next frame, or at once on flush()', () => {
    const frames: Array<() => void> = [];
    const s = new DashboardStore({ schedule: (flush) => frames.push(flush) });
    let notified = 0;
    s.subscribe(() => {
      notified += 1;
    });
    s.loadSuites([summary({ id: 7, suite_execution_id: 7 })], { replace: true });
    expect(s.getSnapshot().suites).toEqual([]);
    s.flush();
    expect(s.getSnapshot().suites.map((x) => x.id)).toEqual([7]);
    expect(notified).toBe(1);
    for (const frame of frames) frame();
    expect(s.getSnapshot().suites.map((x) => x.id)).toEqual([7]);
  });

  it('lists running suites first, then the newest', () => {
    const s = store();
    s.applySuiteProgress(progress(1, { suite_execution_id: 3 }));
    s.applySuiteCompleted({
      suite_execution_id: 9,
      success_rate: 1,
      total_tests: 1,
      passed_tests: 1,
      failed_tests: 0,
    });
    s.applySuiteProgress(progress(1, { suite_execution_id: 4 }));
    expect(s.getSnapshot().suites.map((x) => x.id)).toEqual([4, 3, 9]);
  });

  it("shows the selected suite's live record at the next frame, and only while that suite is selected", () => {
    const frames: Array<() => void> = [];
    const s = new DashboardStore({ schedule: (flush) => frames.push(flush) });
    s.select(1);
    const view = { data: undefined, status: 'loading' as const, error: undefined };
    s.setSelected(1, view);
    expect(s.getSnapshot().selected).toBeUndefined();
    for (const frame of frames.splice(0)) frame();
    expect(s.getSnapshot().selected).toEqual({ id: 1, view });
    s.setSelected(1, view);
    expect(frames).toHaveLength(0); // the same view schedules nothing
    s.select(2);
    s.flush();
    expect(s.getSnapshot().selected).toBeUndefined();
  });
});
