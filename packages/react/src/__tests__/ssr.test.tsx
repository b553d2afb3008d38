// @vitest-environment node
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import {
  ATPWebSocketProvider,
  getDefaultATPWebSocket,
  useATPSubscription,
  useATPWebSocket,
  useLatest,
  useMessageList,
} from '../index.js';
import { clientOptions, startHub } from './helpers.js';

function Dashboard() {
  const { status, isConnected } = useATPWebSocket();
  const progress = useLatest('suite:progress', { suite_execution_id: 1 });
  const logs = useMessageList('logs', { suite_execution_id: 1 }, { max: 10 });
  useATPSubscription('test:completed', { suite_execution_id: 1 }, () => {});
  return (
    <p>
      {status} {String(isConnected)} {progress?.progress_percent ?? 'none'} {logs.length}
    </p>
  );
}

describe('server rendering (no window, no WebSocket)', () => {
  it('renders every hook under a provider without connecting or touching window', async () => {
    expect(typeof window).toBe('undefined');
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    const html = renderToString(
      <ATPWebSocketProvider options={options}>
        <Dashboard />
      </ATPWebSocketProvider>,
    );
    expect(html).toBe('<p>idle<!-- --> <!-- -->false<!-- --> <!-- -->none<!-- --> <!-- -->0</p>');
    expect(wire.sockets).toHaveLength(0);
    expect(await hub.clients()).toHaveLength(0);
  });

  it('renders without a provider and leaves the default client idle and unsubscribed', () => {
    const html = renderToString(<Dashboard />);
    expect(html).toContain('idle');
    expect(getDefaultATPWebSocket().state).toBe('idle');
    expect(getDefaultATPWebSocket().subscriptions).toEqual([]);
  });
});
