import { render, screen, waitFor } from '@testing-library/react';
import { StrictMode } from 'react';
import { describe, expect, it } from 'vitest';
import {
  ATPWebSocket,
  ATPWebSocketProvider,
  type Filter,
  useATPSubscription,
  useLatest,
  useMessageList,
} from '../index.js';
import { clientOptions, disposer, log, progress, startHub } from './helpers.js';

function Progress({ label, filter }: { label: string; filter: Filter }) {
  const latest = useLatest('test:progress', filter);
  return (
    <p>
      {label}: {latest ? `${latest.progress_percent}%` : 'waiting'}
    </p>
  );
}

function Listener({ name, calls }: { name: string; calls: string[] }) {
  useATPSubscription('logs', { suite_execution_id: 7 }, (entry, meta) =>
    calls.push(`${name}:${entry.message}:${meta.type}`),
  );
  return <p>listener {name}</p>;
}

function Tail() {
  const entries = useMessageList('logs', { suite_execution_id: 5 }, { max: 3, from: 'start' });
  return <p>tail: {entries.map((entry) => entry.message).join(',')}</p>;
}

type Renders = { mine: number; other: number };

function Counted({ name, suite, renders }: { name: keyof Renders; suite: number; renders: Renders }) {
  renders[name] += 1;
  const latest = useLatest('test:progress', { suite_execution_id: suite });
  return <p>{`${name}: ${latest?.progress_percent ?? '-'}`}</p>;
}

function LogCount() {
  const entries = useMessageList('logs');
  return <p>logs: {entries.length}</p>;
}

describe('useLatest and useATPSubscription', () => {
  it('keeps receiving in one component after another on the same subscription unmounts', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    const filter = { suite_execution_id: 1 };
    const view = (both: boolean) => (
      <ATPWebSocketProvider options={options}>
        <Progress label="a" filter={filter} />
        {both && <Progress label="b" filter={{ suite_execution_id: 1 }} />}
      </ATPWebSocketProvider>
    );
    const { rerender } = render(view(true));
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']));
    await hub.publish(progress(1, 10));
    await screen.findByText('a: 10%');
    await screen.findByText('b: 10%');

    rerender(view(false));
    await hub.publish(progress(1, 20));
    await screen.findByText('a: 20%');
    expect(screen.queryByText(/^b:/)).toBeNull();
    expect(wire.of('subscribe')).toHaveLength(1);
    expect(wire.of('unsubscribe')).toHaveLength(0);
    expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']);
  });

  it('follows a filter change by value: an equal new object does not resubscribe', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    const view = (filter: Filter) => (
      <ATPWebSocketProvider options={options}>
        <Progress label="suite" filter={filter} />
      </ATPWebSocketProvider>
    );
    const { rerender } = render(view({ suite_execution_id: 1 }));
    await waitFor(() => expect(wire.confirmed()).toHaveLength(1));
    await hub.publish(progress(1, 10));
    await screen.findByText('suite: 10%');

    // Same content, new objects: `[1]` is the same filter as `1` (canonicalSubscriptionKey).
    rerender(view({ suite_execution_id: 1 }));
    rerender(view({ suite_execution_id: [1] }));
    expect(wire.of('subscribe')).toHaveLength(1);
    expect(wire.of('unsubscribe')).toHaveLength(0);

    rerender(view({ suite_execution_id: 2 }));
    // A new subscription shows nothing of the old one.
    expect(screen.getByText('suite: waiting')).toBeTruthy();
    expect(wire.of('unsubscribe').map((frame) => frame.payload)).toEqual([
      { topic: 'test:progress', filter: { suite_execution_id: 1 } },
    ]);
    expect(wire.of('subscribe').map((frame) => frame.payload?.filter)).toEqual([
      { suite_execution_id: 1 },
      { suite_execution_id: 2 },
    ]);
    await waitFor(() => expect(wire.confirmed()).toHaveLength(2));
    await hub.publish([progress(1, 30), progress(2, 40)]);
    await screen.findByText('suite: 40%');
  });

  it('calls the newest handler without resubscribing', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    const calls: string[] = [];
    const view = (name: string) => (
      <ATPWebSocketProvider options={options}>
        <Listener name={name} calls={calls} />
      </ATPWebSocketProvider>
    );
    const { rerender } = render(view('first'));
    await waitFor(() => expect(wire.confirmed()).toHaveLength(1));
    await hub.publish([log(8, 'other suite'), log(7, 'one')]);
    await waitFor(() => expect(calls).toEqual(['first:one:log_entry']));
    rerender(view('second'));
    await hub.publish(log(7, 'two'));
    await waitFor(() => expect(calls).toEqual(['first:one:log_entry', 'second:two:log_entry']));
    expect(wire.of('subscribe')).toHaveLength(1);
  });

  it('keeps the last max payloads in useMessageList, with history replayed from the start', async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    await hub.publish([log(5, 'l1'), log(5, 'l2'), log(6, 'x')]);
    render(
      <ATPWebSocketProvider options={options}>
        <Tail />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('tail: l1,l2');
    await hub.publish([log(5, 'l3'), log(6, 'y')]);
    await screen.findByText('tail: l1,l2,l3');
    await hub.publish(log(5, 'l4'));
    await hub.publish(log(5, 'l5'));
    await screen.findByText('tail: l3,l4,l5');
  });

  it('renders a useLatest component once per message of its subscription, never for others', async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    const renders: Renders = { mine: 0, other: 0 };
    render(
      <ATPWebSocketProvider options={options}>
        <Counted name="mine" suite={1} renders={renders} />
        <Counted name="other" suite={2} renders={renders} />
        <LogCount />
      </ATPWebSocketProvider>,
    );
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toHaveLength(2));
    expect(renders).toEqual({ mine: 1, other: 1 });

    for (const percent of [10, 20, 30]) {
      await hub.publish(progress(2, percent));
      await screen.findByText(`other: ${percent}`);
      await hub.publish(log(1, `entry ${percent}`));
      await screen.findByText(`logs: ${percent / 10}`);
    }
    expect(renders.mine).toBe(1);
    for (const percent of [40, 50]) {
      await hub.publish(progress(1, percent));
      await screen.findByText(`mine: ${percent}`);
    }
    expect(renders).toEqual({ mine: 3, other: 4 });
  });
});

describe('StrictMode', () => {
  it('leaves one socket and one wire subscription per distinct subscription', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    render(
      <StrictMode>
        <ATPWebSocketProvider options={options}>
          <Progress label="a" filter={{ suite_execution_id: 1 }} />
          <Progress label="b" filter={{ suite_execution_id: 1 }} />
        </ATPWebSocketProvider>
      </StrictMode>,
    );
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']));
    await hub.publish(progress(1, 60));
    await screen.findByText('a: 60%');
    await screen.findByText('b: 60%');
    expect(await hub.clients()).toHaveLength(1);
    expect(wire.sockets.filter((socket) => socket.readyState === socket.OPEN)).toHaveLength(1);
    expect(wire.of('subscribe')).toHaveLength(1);
    expect(wire.of('unsubscribe')).toHaveLength(0);
  });

  it('never disconnects a client it was given, even in StrictMode', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    const client = new ATPWebSocket(options);
    disposer.add(() => client.disconnect());
    const { unmount } = render(
      <StrictMode>
        <ATPWebSocketProvider client={client}>
          <Progress label="given" filter={{ suite_execution_id: 3 }} />
        </ATPWebSocketProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(wire.confirmed()).toHaveLength(1));
    await hub.publish(progress(3, 5));
    await screen.findByText('given: 5%');
    unmount();
    expect(client.state).toBe('open');
    expect(wire.sockets).toHaveLength(1);
    // The component's own reference was released, so nothing is left subscribed.
    expect(client.subscriptions).toEqual([]);
  });
});
