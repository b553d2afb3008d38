import type { ReactElement } from 'react';

/** Props of {@link SuiteProgressBar}. */
export interface SuiteProgressBarProps {
  readonly total: number;
  readonly passed: number;
  readonly failed: number;
  readonly running: boolean;
  readonly size?: 'small' | 'large';
  readonly label: string;
}

const share = (count: number, total: number) => (total > 0 ? (count / total) * 100 : 0);

/** A suite's progress: passed (green) and failed (red) tests as segments of the whole. */
export function SuiteProgressBar({
  total,
  passed,
  failed,
  running,
  size = 'small',
  label,
}: SuiteProgressBarProps): ReactElement {
  const done = passed + failed;
  const percent = Math.round(share(done, total));
  return (
    <div
      className={`bar bar-${size}${running ? ' bar-running' : ''}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent}
    >
      <span className="bar-fill bar-passed" style={{ width: `${share(passed, total)}%` }} />
      <span className="bar-fill bar-failed" style={{ width: `${share(failed, total)}%` }} />
    </div>
  );
}

/** A test's progress through its runs. */
export function TestProgressBar({
  percent,
  status,
  label,
}: {
  readonly percent: number;
  readonly status: string;
  readonly label: string;
}): ReactElement {
  const value = Math.max(0, Math.min(100, percent));
  return (
    <div
      className={`bar bar-thin bar-${status}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(value)}
    >
      <span className="bar-fill" style={{ width: `${value}%` }} />
    </div>
  );
}
