import type { ReactElement } from 'react';

const LABELS: Record<string, string> = {
  running: 'Running',
  passed: 'Passed',
  failed: 'Failed',
  completed: 'Completed',
  pending: 'Pending',
  queued: 'Queued',
  error: 'Error',
  timeout: 'Timed out',
  cancelled: 'Cancelled',
  skipped: 'Skipped',
};

/** A status as a coloured pill. */
export function StatusBadge({ status }: { readonly status: string }): ReactElement {
  return (
    <span className={`badge badge-${status}`} data-status={status}>
      {status === 'running' && <span className="badge-pulse" aria-hidden="true" />}
      {LABELS[status] ?? status}
    </span>
  );
}
