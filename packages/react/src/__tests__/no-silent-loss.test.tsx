import { render, screen, waitFor } from '@testing-library/react';
import { createATPWebSocketServer } from '@atp/ws-server';
import * as React from 'react';
import { StrictMode } from 'react';
import { describe, expect, it } from 'vitest';
import { ATPWebSocket, ATPWebSocketProvider, useLatest, useMessageList } from '../index.js';
import { TestProgress } from './readme-example.js';
import { clientOptions, disposer, log, progress, startHub } from './helpers.js';

/** A component subscribing on mount and unsubscribing the topic on unmount, on a client of its own. */
function BestPractice({ ws }: { ws: ATPWebSocket }) {
  React.useEffect(() => {
    ws.subscribe('test:progress', { suite_execution_id: 1 });
    return () => ws.unsubscribe('test:progress');
  }, [ws]);
  return <p>best practice</p>;
}

function Latest() {
  const latest = useLatest('test:progress', { suite_execution_id: 1 });
  return <p>latest: {latest ? `${latest.progress_percent}%` : 'waiting'}</p>;
}

function FromStart() {
  const items = useMessageList('logs', { suite_execution_id: 5 }, { from: 'start' });
  return <p>tail: {items.map((i) => i.message).join(',')}</p>;
}

function Tail({ resetOn }: { resetOn?: 'epoch' | 'gap' | 'never' }) {
  const entries = useMessageList('logs', { suite_execution_id: 5 }, { max: 10, from: 'start', resetOn });
  return <p>tail: {entries.map((entry) => entry.message).join(',')}</p>;
}

describe('the README hook example releases what it subscribed', () => {
  it('leaves zero references after a suite change and unmount under StrictMode', async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    const client = new ATPWebSocket(options);
    disposer.add(() => client.disconnect());
    const view = (suite: number) => (
      <StrictMode>
        <ATPWebSocketProvider client={client}>
          <TestProgress suiteExecutionId={suite} />
        </ATPWebSocketProvider>
      </StrictMode>
    );
    const { rerender, unmount } = render(view(1));
    await screen.findByText('Connected: Yes');
    rerender(view(2));
    await waitFor(() =>
      expect(client.subscriptions.map((s) => s.filter)).toContainEqual({ suite_execution_id: 2 }),
    );
    await hub.publish(progress(2, 30));
    await screen.findByText('Progress: 30%');
    unmount();
    expect(client.subscriptions).toEqual([]);
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual([]));
  });
});

describe('one owner never cancels another', () => {
  it("keeps a useLatest live when another component's cleanup calls unsubscribe(topic)", async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    const client = new ATPWebSocket(options);
    disposer.add(() => client.disconnect());
    const view = (both: boolean) => (
      <ATPWebSocketProvider client={client}>
        {both && <BestPractice ws={client} />}
        <Latest />
      </ATPWebSocketProvider>
    );
    const { rerender } = render(view(true));
    await waitFor(() => expect(client.subscriptions[0]?.refs).toBe(2));
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']));
    rerender(view(false));
    expect(client.subscriptions[0]?.refs).toBe(1);
    await hub.publish(progress(1, 40));
    await screen.findByText('latest: 40%');
  });
});

describe('useMessageList history', () => {
  it("shows the history again when a from: 'start' list is unmounted and mounted again", async () => {
    const { hub, url } = await startHub();
    const { options } = clientOptions(url);
    const client = new ATPWebSocket(options);
    disposer.add(() => client.disconnect());
    await hub.publish([log(5, 'l1'), log(5, 'l2')]);
    const view = (shown: boolean) => (
      <ATPWebSocketProvider client={client}>{shown ? <Tail /> : <p>hidden</p>}</ATPWebSocketProvider>
    );
    const { rerender } = render(view(true));
    await screen.findByText('tail: l1,l2');
    rerender(view(false));
    await screen.findByText('hidden');
    rerender(view(true));
    await screen.findByText('tail: l1,l2');
  });

  it('does not show the previous epoch’s items after the server restarted with its history lost', async () => {
    const first = createATPWebSocketServer({ port: 0 });
    await first.ready;
    const port = first.address()?.port ?? 0;
    const { options } = clientOptions(`ws://127.0.0.1:${port}/api/ws/updates`);
    render(
      <ATPWebSocketProvider options={options}>
        <Tail />
      </ATPWebSocketProvider>,
    );
    await waitFor(async () => expect((await first.clients())[0]?.subscriptions).toEqual(['logs']));
    await first.publish([log(5, 'old1'), log(5, 'old2')]);
    await screen.findByText('tail: old1,old2');
    await first.close();
    const second = createATPWebSocketServer({ port });
    disposer.add(() => second.close());
    await second.ready;
    await waitFor(async () => expect((await second.clients())[0]?.subscriptions).toEqual(['logs']));
    await second.publish(log(5, 'new1'));
    await screen.findByText('tail: new1');
  });

  it("shows no item of a lost epoch when a from: 'start' list is mounted again after a server restart", async () => {
    const first = createATPWebSocketServer({ port: 0 });
    await first.ready;
    const port = first.address()?.port ?? 0;
    const { options } = clientOptions(`ws://127.0.0.1:${port}/api/ws/updates`);
    const client = new ATPWebSocket(options);
    disposer.add(() => client.disconnect());
    const view = (shown: boolean) => (
      <ATPWebSocketProvider client={client}>{shown ? <FromStart /> : <p>hidden</p>}</ATPWebSocketProvider>
    );
    const { rerender } = render(view(true));
    await waitFor(async () => expect((await first.clients())[0]?.subscriptions).toEqual(['logs']));
    await first.publish([log(5, 'old1'), log(5, 'old2')]);
    await screen.findByText('tail: old1,old2');
    rerender(view(false));
    await first.close();
    const second = createATPWebSocketServer({ port });
    disposer.add(() => second.close());
    await second.ready;
    await waitFor(() => expect(client.state).toBe('open'), { timeout: 5000 });
    await second.publish(log(5, 'new1'));
    rerender(view(true));
    await screen.findByText(/tail: .*new1/);
    await new Promise((r) => setTimeout(r, 200));
    expect(screen.getByText(/^tail:/).textContent).toBe('tail: new1');
  });
});
