import { render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ATPWebSocketProvider, type Filter, useSubscriptionState } from '../index.js';
import { clientOptions, progress, startHub } from './helpers.js';

const percentOf = (payload: { progress_percent: number }) => `${payload.progress_percent}%`;

function State({ filter, enabled }: { filter: Filter; enabled?: boolean }) {
  const { data, error, status } = useSubscriptionState('test:progress', filter, {
    select: percentOf,
    enabled,
  });
  return <p>{`${status} ${data ?? '-'} ${error?.serverCode ?? ''}`.trim()}</p>;
}

describe('useSubscriptionState', () => {
  it('goes connecting → subscribing → live, with data through select', async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    render(
      <ATPWebSocketProvider options={options}>
        <State filter={{ suite_execution_id: 1 }} />
      </ATPWebSocketProvider>,
    );
    expect(screen.getByText(/^connecting/)).toBeTruthy();
    await screen.findByText('live -');
    await hub.publish(progress(1, 42));
    await screen.findByText('live 42%');
  });

  it('reports a refused subscription as status error with the server code', async () => {
    const { createATPWebSocketServer } = await import('@atp/ws-server');
    const hub = createATPWebSocketServer({ port: 0, authorizeSubscription: () => false });
    await hub.ready;
    const { options } = clientOptions(`ws://127.0.0.1:${hub.address()?.port}/api/ws/updates`);
    render(
      <ATPWebSocketProvider options={options}>
        <State filter={{ suite_execution_id: 1 }} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('error - forbidden');
    await hub.close();
  });

  it('holds no subscription while enabled is false', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    render(
      <ATPWebSocketProvider options={options}>
        <State filter={{ suite_execution_id: 1 }} enabled={false} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('subscribing -');
    await waitFor(async () => expect(await hub.clients()).toHaveLength(1));
    expect(wire.of('subscribe')).toHaveLength(0);
  });
});
