import type { ReactElement } from 'react';
import { formatCount, formatRate } from '../format.js';
import type { Suite } from '../types.js';
import { ConnectionStatus } from './connection-status.js';

/** The top bar: product name, totals over the known suites, the live rate and the connection. */
export function Header({
  suites,
  rate,
}: {
  readonly suites: readonly Suite[];
  readonly rate: number;
}): ReactElement {
  let running = 0;
  let passed = 0;
  let failed = 0;
  for (const suite of suites) {
    if (suite.status === 'running') running += 1;
    passed += suite.passedTests;
    failed += suite.failedTests;
  }
  const done = passed + failed;
  return (
    <header className="topbar">
      <a className="brand" href="/" aria-label="ATP Dashboard home">
        <svg className="brand-mark" viewBox="0 0 32 32" aria-hidden="true">
          <rect width="32" height="32" rx="8" />
          <path d="M9 21l5-10 4 7 2-3 3 6" />
        </svg>
        <span className="brand-name">ATP</span>
        <span className="brand-sub">Live runs</span>
      </a>
      <dl className="totals">
        <div>
          <dt>Running</dt>
          <dd data-testid="total-running">{running}</dd>
        </div>
        <div>
          <dt>Tests passed</dt>
          <dd className="text-passed">{formatCount(passed)}</dd>
        </div>
        <div>
          <dt>Tests failed</dt>
          <dd className="text-failed">{formatCount(failed)}</dd>
        </div>
        <div>
          <dt>Pass rate</dt>
          <dd>{done > 0 ? formatRate(passed / done) : '—'}</dd>
        </div>
        <div className="totals-rate">
          <dt>Updates</dt>
          <dd>
            {rate < 10 ? rate.toFixed(1) : Math.round(rate)}
            <small>/s</small>
          </dd>
        </div>
      </dl>
      <ConnectionStatus />
    </header>
  );
}
