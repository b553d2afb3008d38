import type { DataMessage } from '@atp/ws-protocol';
import { createATPWebSocketServer, type ATPWebSocketServer } from '@atp/ws-server';
import { render, screen, waitFor } from '@testing-library/react';
import { StrictMode } from 'react';
import { describe, expect, it } from 'vitest';
import { ATPWebSocketProvider, type UseResourceOptions, useResource } from '../index.js';
import { clientOptions, disposer, progress, startHub } from './helpers.js';

type Suite = { percents: number[] };

/** Resource `suite`: every test_progress percent of a suite in stream order, kept from the hub's stream. */
function serveSuites(hub: ATPWebSocketServer): Map<number, Suite> {
  const suites = new Map<number, Suite>();
  hub.resources.follow((messages: readonly DataMessage[]) => {
    for (const m of messages) {
      if (m.type !== 'test_progress') continue;
      const suite = suites.get(m.payload.suite_execution_id) ?? { percents: [] };
      suite.percents.push(m.payload.progress_percent);
      suites.set(m.payload.suite_execution_id, suite);
    }
  });
  hub.resources.register('suite', (id) => ({
    data: structuredClone(suites.get(Number(id)) ?? { percents: [] }),
  }));
  return suites;
}

const suiteOptions = (suite: number): UseResourceOptions<Suite> => ({
  subscriptions: [{ topic: 'test:progress', filter: { suite_execution_id: suite } }],
  reduce: (data, message) =>
    message.type === 'test_progress'
      ? { percents: [...data.percents, message.payload.progress_percent] }
      : data,
});

function SuiteView({ kind = 'suite', id }: { kind?: string; id: number }) {
  const { data, status, error } = useResource(kind, id, suiteOptions(id));
  return <p>{`${status} [${data?.percents.join(',') ?? ''}] ${error?.serverCode ?? ''}`.trim()}</p>;
}

/** Suite 4, with `matches` when given. */
function Matching({ matches }: { matches: UseResourceOptions<Suite>['matches'] }) {
  const { data, status } = useResource('suite', 4, { ...suiteOptions(4), ...(matches ? { matches } : {}) });
  return <p>{`${status} [${data?.percents.join(',') ?? ''}]`}</p>;
}

describe('useResource', () => {
  it('goes loading → live with the snapshot, then applies live messages in order', async () => {
    const { hub, url } = await startHub();
    serveSuites(hub);
    await hub.publish([progress(1, 10), progress(1, 20), progress(2, 99)]);
    const { options, wire } = clientOptions(url);
    render(
      <StrictMode>
        <ATPWebSocketProvider options={options}>
          <SuiteView id={1} />
        </ATPWebSocketProvider>
      </StrictMode>,
    );
    expect(screen.getByText(/^loading/)).toBeTruthy();
    await screen.findByText('live [10,20]');
    await hub.publish([progress(1, 30), progress(2, 98), progress(1, 40)]);
    await screen.findByText('live [10,20,30,40]');
    // The hook itself fetched nothing: the resource's requests went over the client's socket.
    expect(wire.of('get_resource').length).toBeGreaterThanOrEqual(1);
  });

  it('refetches after a server restart (history lost) and shows the new server state', async () => {
    const first = await startHub();
    serveSuites(first.hub);
    await first.hub.publish([progress(1, 10)]);
    const { options } = clientOptions(first.url);
    render(
      <ATPWebSocketProvider options={options}>
        <SuiteView id={1} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('live [10]');
    await first.hub.close();
    const hub = createATPWebSocketServer({ port: first.port });
    disposer.add(() => hub.close());
    await hub.ready;
    const suites = serveSuites(hub);
    await hub.publish([progress(1, 55), progress(1, 66)]);
    await screen.findByText('live [55,66]', undefined, { timeout: 10_000 });
    expect(suites.get(1)?.percents).toEqual([55, 66]);
  });

  it('shows an unknown kind as status error with the server code', async () => {
    const { url } = await startHub();
    const { options } = clientOptions(url);
    render(
      <ATPWebSocketProvider options={options}>
        <SuiteView kind="nothing" id={1} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('error [] unknown_resource');
  });

  it('releases the subscriptions when the last component showing the resource unmounts', async () => {
    const { hub, url } = await startHub();
    serveSuites(hub);
    const { options, wire } = clientOptions(url);
    const view = render(
      <ATPWebSocketProvider options={options}>
        <SuiteView id={3} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('live []');
    view.rerender(<ATPWebSocketProvider options={options}>{null}</ATPWebSocketProvider>);
    await waitFor(() => expect(wire.of('unsubscribe')).toHaveLength(1));
  });

  it('goes on applying messages when a later render leaves matches out', async () => {
    const { hub, url } = await startHub();
    serveSuites(hub);
    const { options } = clientOptions(url);
    const onlyEven = (message: DataMessage) =>
      message.type === 'test_progress' && message.payload.progress_percent % 2 === 0;
    const tree = (matches?: UseResourceOptions<Suite>['matches']) => (
      <ATPWebSocketProvider options={options}>
        <Matching matches={matches} />
      </ATPWebSocketProvider>
    );
    const view = render(tree(onlyEven));
    await screen.findByText('live []');
    await hub.publish([progress(4, 10), progress(4, 11), progress(4, 12)]);
    await screen.findByText('live [10,12]');
    view.rerender(tree(undefined));
    await hub.publish([progress(4, 13)]);
    // Without matches, every message of the subscriptions belongs to the resource again.
    await screen.findByText('live [10,11,12,13]');
  });
});
