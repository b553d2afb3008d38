import { render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ATPWebSocketProvider, useLatest } from '../index.js';
import { clientOptions, progress, startHub } from './helpers.js';

function Latest({ index, renders }: { index: number; renders: number[] }) {
  renders[index] = (renders[index] ?? 0) + 1;
  const latest = useLatest('test:progress', { suite_execution_id: 1 });
  return <p>{`hook ${index}: ${latest?.progress_percent ?? '-'}`}</p>;
}

describe('render count under load', () => {
  it('renders 100 useLatest hooks about once per frame under 1,000 messages/s', async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    const renders: number[] = [];
    render(
      <ATPWebSocketProvider options={options}>
        {Array.from({ length: 100 }, (_, index) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: a fixed list
          <Latest key={index} index={index} renders={renders} />
        ))}
      </ATPWebSocketProvider>,
    );
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']));
    const before = [...renders];
    const started = Date.now();
    // One message per millisecond, each in its own frame on the wire.
    for (let n = 1; n <= 1000; n += 1) {
      await hub.publish(progress(1, n / 10, n));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await waitFor(() => expect(screen.getAllByText(/: 100$/)).toHaveLength(100), { timeout: 10000 });
    const elapsed = Date.now() - started;
    const most = Math.max(...renders.map((count, index) => count - (before[index] ?? 0)));
    // About one render per 16 ms frame (with slack for a slow machine), never one per message.
    expect(most).toBeLessThan(elapsed / 10 + 20);
    expect(most).toBeLessThan(300);
  }, 60000);
});
