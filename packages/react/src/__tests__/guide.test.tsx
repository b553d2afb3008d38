import { render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ATPWebSocketProvider, useATPWebSocket } from '../index.js';
import { TestProgress } from './readme-example.js';
import { clientOptions, progress, startHub } from './helpers.js';

function Probe({ seen }: { seen: Set<unknown> }) {
  const { on, subscribe, unsubscribe, off, status } = useATPWebSocket();
  seen.add(on).add(subscribe).add(unsubscribe).add(off);
  return <p>status: {status}</p>;
}

describe('the React example of the README and docs/GUIDE.md', () => {
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
