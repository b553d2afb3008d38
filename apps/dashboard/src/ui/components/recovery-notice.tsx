import type { ReactElement } from 'react';
import type { RecoveryNotice as Notice } from '../use-gap-recovery.js';

const REASONS: Record<string, string> = {
  epoch_changed: 'The server restarted and its history was lost.',
  history_truncated: 'The server no longer keeps the updates this page missed.',
  unknown_position: 'The server did not recognise where this page left off.',
  broker_unavailable: 'The server could not read its history.',
  sequence_hole: 'Some updates did not arrive.',
};

/** Says that the page missed updates and rebuilt itself from the server. */
export function RecoveryNotice({
  notice,
  onDismiss,
}: {
  readonly notice: Notice;
  readonly onDismiss: () => void;
}): ReactElement {
  let text: string;
  if (notice.failed)
    text =
      'Some updates were missed and the server could not be reached to refresh; retrying on the next update.';
  else if (notice.partialHistory)
    text = 'The server no longer keeps the oldest part of this history: showing what it has.';
  else
    text = `${REASONS[notice.reason] ?? 'Some updates were missed.'} The view was refreshed from the server.`;
  return (
    <div
      className={`notice${notice.failed ? ' notice-error' : ''}`}
      role="status"
      data-testid="recovery-notice"
    >
      <span>{text}</span>
      <button type="button" className="link-button" onClick={onDismiss} aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}
