import type { ReactElement } from 'react';
import { formatRate, formatSeconds, formatTime } from '../format.js';
import type { Suite } from '../types.js';
import { SuiteProgressBar } from './progress-bar.js';
import { StatusBadge } from './status-badge.js';

/** Props of {@link SuiteList}. */
export interface SuiteListProps {
  readonly suites: readonly Suite[];
  readonly loaded: boolean;
  readonly selectedId: number | undefined;
  readonly onSelect: (id: number) => void;
}

/** Finished runs listed at most (the selected one always is); older ones stay reachable by URL. */
const MAX_FINISHED = 50;

/** The runs: running suites first, then the newest finished ones, each with its live progress. */
export function SuiteList({ suites, loaded, selectedId, onSelect }: SuiteListProps): ReactElement {
  const running = suites.filter((s) => s.status === 'running').length;
  const shown = suites.filter((s, i) => i < running + MAX_FINISHED || s.id === selectedId);
  return (
    <nav className="runs" aria-label="Suite executions">
      <div className="runs-head">
        <h2>Suite runs</h2>
        <span className="muted">
          {running} running · {suites.length - running} finished
        </span>
      </div>
      {suites.length === 0 ? (
        <p className="empty">
          {loaded
            ? 'No suite has run yet. Suites appear here as soon as a runner starts one.'
            : 'Loading runs…'}
        </p>
      ) : (
        <ul className="runs-list">
          {shown.map((suite) => (
            <li key={suite.id}>
              <SuiteCard suite={suite} selected={suite.id === selectedId} onSelect={onSelect} />
            </li>
          ))}
          {shown.length < suites.length && (
            <li className="runs-more muted">{suites.length - shown.length} older runs not listed</li>
          )}
        </ul>
      )}
    </nav>
  );
}

function SuiteCard({
  suite,
  selected,
  onSelect,
}: {
  readonly suite: Suite;
  readonly selected: boolean;
  readonly onSelect: (id: number) => void;
}): ReactElement {
  const finished = suite.status !== 'running' && suite.status !== 'pending' && suite.status !== 'queued';
  return (
    <button
      type="button"
      className="suite-card"
      aria-current={selected ? 'true' : undefined}
      data-testid="suite-card"
      data-suite-id={suite.id}
      onClick={() => onSelect(suite.id)}
    >
      <span className="suite-card-top">
        <span className="suite-name">{suite.name ?? `Suite ${suite.id}`}</span>
        <StatusBadge status={suite.status} />
      </span>
      <span className="suite-card-meta">
        <span className="agent">{suite.agent ?? 'unknown agent'}</span>
        <span className="muted">#{suite.id}</span>
        {suite.startedAt && <span className="muted">{formatTime(suite.startedAt)}</span>}
      </span>
      <SuiteProgressBar
        total={suite.totalTests}
        passed={suite.passedTests}
        failed={suite.failedTests}
        running={suite.status === 'running'}
        label={`${suite.name ?? 'Suite'} progress`}
      />
      <span className="suite-card-counts">
        <span>
          {suite.completedTests}/{suite.totalTests} tests
        </span>
        <span className="text-passed" title="passed">
          ✓ {suite.passedTests}
        </span>
        <span className="text-failed" title="failed">
          ✗ {suite.failedTests}
        </span>
        <span className="suite-card-end">
          {finished
            ? `${formatRate(suite.successRate)} · ${formatSeconds(suite.durationSeconds)}`
            : `${Math.round(suite.progressPercent)}%`}
        </span>
      </span>
    </button>
  );
}
