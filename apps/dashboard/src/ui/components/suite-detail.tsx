import type { ReactElement } from 'react';
import { formatCount, formatRate, formatScore, formatSeconds, formatTime } from '../format.js';
import type { ResourceStatus } from '@atp/ws-react';
import type { LogLevel, Suite, SuiteDetail } from '../types.js';
import { EventStream } from './event-stream.js';
import { LogTail } from './log-tail.js';
import { SuiteProgressBar } from './progress-bar.js';
import { StatusBadge } from './status-badge.js';
import { TestsTable } from './tests-table.js';

/** Props of {@link SuiteDetailView}. */
export interface SuiteDetailViewProps {
  readonly suite: Suite;
  readonly detail: SuiteDetail;
  /** Where the live copy of the run is: `live`, or `resyncing` after a gap (still showing the last state). */
  readonly status: ResourceStatus;
  readonly eventTypes: readonly string[];
  readonly logLevels: readonly LogLevel[];
  readonly onEventTypesChange: (types: string[]) => void;
  readonly onLogLevelsChange: (levels: LogLevel[]) => void;
}

/** One suite execution: its summary, tests, event stream and log tail. */
export function SuiteDetailView({
  suite,
  detail,
  status,
  eventTypes,
  logLevels,
  onEventTypesChange,
  onLogLevelsChange,
}: SuiteDetailViewProps): ReactElement {
  const scores = detail.tests.map((t) => t.score).filter((s): s is number => typeof s === 'number');
  const average = scores.length > 0 ? scores.reduce((a, b) => a + b, 0) / scores.length : undefined;
  const runningTests = detail.tests.filter((t) => t.status === 'running').length;
  const eventTotal = Object.values(detail.eventCounts).reduce((a, b) => a + b, 0);
  const finished = suite.status !== 'running';
  return (
    <div className="detail" data-testid="suite-detail" data-suite-id={suite.id} data-resource={status}>
      <section className="panel summary">
        <div className="summary-head">
          <div>
            <h2 data-testid="suite-title">{suite.name ?? `Suite ${suite.id}`}</h2>
            <p className="summary-meta">
              <span className="agent">{suite.agent ?? 'unknown agent'}</span>
              <span className="muted">run #{suite.id}</span>
              {suite.startedAt && <span className="muted">started {formatTime(suite.startedAt)}</span>}
            </p>
          </div>
          <StatusBadge status={suite.status} />
        </div>
        <SuiteProgressBar
          total={suite.totalTests}
          passed={suite.passedTests}
          failed={suite.failedTests}
          running={suite.status === 'running'}
          size="large"
          label="Suite progress"
        />
        <dl className="stats">
          <Stat
            label="Progress"
            value={`${suite.completedTests}/${suite.totalTests}`}
            sub={`${Math.round(suite.progressPercent)}%`}
          />
          <Stat label="Passed" value={String(suite.passedTests)} tone="passed" />
          <Stat label="Failed" value={String(suite.failedTests)} tone="failed" />
          <Stat
            label={finished ? 'Success rate' : 'Running now'}
            value={finished ? formatRate(suite.successRate) : String(runningTests)}
          />
          <Stat label="Avg score" value={formatScore(average)} />
          <Stat
            label={finished ? 'Duration' : 'Events'}
            value={finished ? formatSeconds(suite.durationSeconds) : formatCount(eventTotal)}
          />
        </dl>
      </section>
      <TestsTable tests={detail.tests} totalTests={suite.totalTests} />
      <div className="streams">
        <EventStream
          events={detail.events}
          counts={detail.eventCounts}
          tests={detail.tests}
          types={eventTypes}
          onTypesChange={onEventTypesChange}
        />
        <LogTail
          logs={detail.logs}
          counts={detail.logCounts}
          levels={logLevels}
          onLevelsChange={onLogLevelsChange}
        />
      </div>
    </div>
  );
}

function Stat({
  label,
  value,
  sub,
  tone,
}: {
  readonly label: string;
  readonly value: string;
  readonly sub?: string;
  readonly tone?: 'passed' | 'failed';
}): ReactElement {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd className={tone ? `text-${tone}` : undefined}>
        {value}
        {sub && <small>{sub}</small>}
      </dd>
    </div>
  );
}
