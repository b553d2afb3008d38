import { render, screen, waitFor } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';
import { ATPWebSocketProvider, useATPWebSocket } from '../index.js';
import { clientOptions, progress, startHub } from './helpers.js';

// The guide's "React Hook" example, verbatim but for the prop's type annotation.
function TestProgress({ suiteExecutionId }: { suiteExecutionId: number }) {
  const { isConnected, subscribe, on } = useATPWebSocket();
  const [progress, setProgress] = React.useState(0);

  React.useEffect(() => {
    const cleanup = on('test_progress', (data) => {
      if (data.suite_execution_id === suiteExecutionId) {
        setProgress(data.progress_percent);
      }
    });

    subscribe('test:progress', { suite_execution_id: suiteExecutionId });

    return cleanup;
  }, [suiteExecutionId, on, subscribe]);

  return (
    <div>
      <p>Connected: {isConnected ? 'Yes' : 'No'}</p>
      <p>Progress: {progress}%</p>
    </div>
  );
}

function Probe({ seen }: { seen: Set<unknown> }) {
  const { on, subscribe, unsubscribe, off, status } = useATPWebSocket();
  seen.add(on).add(subscribe).add(unsubscribe).add(off);
  return <p>status: {status}</p>;
}

describe("the guide's React example", () => {
  it('shows the connection and the progress of its suite only', async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    render(
      <ATPWebSocketProvider options={options}>
        <TestProgress suiteExecutionId={123} />
      </ATPWebSocketProvider>,
    );
    expect(screen.getByText('Connected: No')).toBeTruthy();
    await screen.findByText('Connected: Yes');
    // `subscribe` was called before `connected`: wait until the hub holds it.
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']));
    await hub.publish([progress(999, 80), progress(123, 50)]);
    await screen.findByText('Progress: 50%');
    await hub.publish(progress(123, 75));
    await screen.findByText('Progress: 75%');
  });

  it('keeps on and subscribe identical across renders, so the effect runs once', async () => {
    const { url } = await startHub();
    const { options, wire } = clientOptions(url);
    const seen = new Set<unknown>();
    render(
      <ATPWebSocketProvider options={options}>
        <Probe seen={seen} />
        <TestProgress suiteExecutionId={1} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('status: open');
    expect(seen.size).toBe(4);
    expect(wire.of('subscribe')).toHaveLength(1);
  });
});
