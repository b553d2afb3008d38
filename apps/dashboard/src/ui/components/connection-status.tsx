import { useATPWebSocket } from '@atp/ws-react';
import { type ReactElement, useEffect, useState, useSyncExternalStore } from 'react';

/** What the indicator says: derived from the client's state, its retries and the browser's network. */
export type ConnectionKind = 'connecting' | 'connected' | 'reconnecting' | 'offline';

const subscribeOnline = (listener: () => void) => {
  window.addEventListener('online', listener);
  window.addEventListener('offline', listener);
  return () => {
    window.removeEventListener('online', listener);
    window.removeEventListener('offline', listener);
  };
};

/** The browser's idea of the network (`navigator.onLine`). */
function useOnline(): boolean {
  return useSyncExternalStore(
    subscribeOnline,
    () => navigator.onLine,
    () => true,
  );
}

const LABELS: Record<ConnectionKind, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

/**
 * The connection pill: Connected (live), Reconnecting… (with the attempt and
 * the next try), or Offline (the browser has no network, or the client gave
 * up: then a button tries again).
 */
export function ConnectionStatus(): ReactElement {
  const { status, on } = useATPWebSocket();
  const online = useOnline();
  const [retry, setRetry] = useState<{ attempt: number; at: number }>();
  const [now, setNow] = useState(() => Date.now());

  useEffect(
    () => on('reconnecting', ({ attempt, delay }) => setRetry({ attempt, at: Date.now() + delay })),
    [on],
  );
  useEffect(() => on('connect', () => setRetry(undefined)), [on]);
  // Ticks only while a retry is scheduled, for the countdown.
  useEffect(() => {
    if (!retry) return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, [retry]);

  let kind: ConnectionKind;
  if (status === 'open') kind = 'connected';
  else if (status === 'closed' || !online) kind = 'offline';
  else if (retry || status === 'reconnecting') kind = 'reconnecting';
  else kind = 'connecting';

  const seconds = retry ? Math.max(0, Math.ceil((retry.at - now) / 1000)) : 0;
  let detail = '';
  if (kind === 'reconnecting' && retry) {
    detail = status === 'connecting' || seconds === 0 ? `attempt ${retry.attempt}` : `retry in ${seconds} s`;
  } else if (kind === 'offline') {
    detail = online ? 'not connected' : 'no network';
  }

  return (
    <div className="connection" data-testid="connection" data-state={kind} role="status" aria-live="polite">
      <span className="connection-dot" aria-hidden="true" />
      <span className="connection-label">{LABELS[kind]}</span>
      {detail && <span className="connection-detail">{detail}</span>}
      {kind === 'offline' && status === 'closed' && (
        // A closed client starts a fresh session; a reload replays every run into a clean page.
        <button type="button" className="link-button" onClick={() => window.location.reload()}>
          Retry
        </button>
      )}
    </div>
  );
}
