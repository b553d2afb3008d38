import type { ReactElement } from 'react';
import { formatScore, formatSeconds } from '../format.js';
import type { TestRun } from '../types.js';
import { TestProgressBar } from './progress-bar.js';
import { StatusBadge } from './status-badge.js';

/** The selected suite's tests, the latest started first, with progress, score and duration. */
export function TestsTable({
  tests,
  totalTests,
}: {
  readonly tests: readonly TestRun[];
  readonly totalTests: number;
}): ReactElement {
  const waiting = Math.max(0, totalTests - tests.length);
  return (
    <section className="panel" aria-labelledby="tests-title">
      <div className="panel-head">
        <h3 id="tests-title">Tests</h3>
        <span className="muted">
          {tests.length} of {totalTests} started
        </span>
      </div>
      <div className="table-wrap">
        <table className="tests">
          <thead>
            <tr>
              <th scope="col">Test</th>
              <th scope="col" className="col-status">
                Status
              </th>
              <th scope="col" className="col-progress">
                Progress
              </th>
              <th scope="col" className="num">
                Score
              </th>
              <th scope="col" className="num">
                Duration
              </th>
            </tr>
          </thead>
          <tbody>
            {tests.map((test) => (
              <tr key={test.id} data-testid="test-row" data-test-id={test.testId} data-status={test.status}>
                <td>
                  <span className="test-name">{test.name ?? test.testId}</span>
                  <span className="test-id">{test.testId}</span>
                </td>
                <td className="col-status">
                  <StatusBadge status={test.status} />
                </td>
                <td className="col-progress">
                  <TestProgressBar
                    percent={test.progressPercent}
                    status={test.status}
                    label={`${test.name ?? test.testId} progress`}
                  />
                  <span className="test-step" title={test.error ?? test.message}>
                    {test.status === 'running'
                      ? (test.message ?? `run ${test.currentRun ?? 0}/${test.totalRuns ?? '?'}`)
                      : (test.error ?? (test.totalRuns ? `${test.totalRuns} runs` : ''))}
                  </span>
                </td>
                <td className={`num score ${scoreTone(test)}`}>{formatScore(test.score)}</td>
                <td className="num">{formatSeconds(test.durationSeconds)}</td>
              </tr>
            ))}
            {waiting > 0 && (
              <tr className="waiting">
                <td colSpan={5}>
                  {waiting} more {waiting === 1 ? 'test has' : 'tests have'} not started yet
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function scoreTone(test: TestRun): string {
  if (test.status === 'passed') return 'text-passed';
  if (test.status === 'failed') return 'text-failed';
  return '';
}
