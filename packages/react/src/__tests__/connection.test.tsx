import { render, screen, waitFor } from '@testing-library/react';
import { hydrateRoot } from 'react-dom/client';
import { renderToString } from 'react-dom/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import {
  ATPWebSocketProvider,
  type ATPWebSocketOptions,
  getDefaultATPWebSocket,
  useATPWebSocket,
  useLatest,
} from '../index.js';
import { clientOptions, disposer, progress, startHub } from './helpers.js';

function Status() {
  const { isConnected } = useATPWebSocket();
  return <p>Connected: {isConnected ? 'Yes' : 'No'}</p>;
}

function Percent({ suite }: { suite: number }) {
  const latest = useLatest('test:progress', { suite_execution_id: suite });
  return <p>Percent: {latest?.progress_percent ?? '-'}</p>;
}

function Recorder({ seen }: { seen: string[] }) {
  const { status } = useATPWebSocket();
  if (seen.at(-1) !== status) seen.push(status);
  return null;
}

function ClientProbe({ found }: { found: Set<unknown> }) {
  found.add(useATPWebSocket().client);
  return null;
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('connection state', () => {
  it('shows isConnected false then true when the server restarts, and restores the subscription', async () => {
    const first = await startHub();
    const { options } = clientOptions(first.url);
    const seen: string[] = [];
    render(
      <ATPWebSocketProvider options={options}>
        <Recorder seen={seen} />
        <Status />
        <Percent suite={1} />
      </ATPWebSocketProvider>,
    );
    await screen.findByText('Connected: Yes');
    await waitFor(async () =>
      expect((await first.hub.clients())[0]?.subscriptions).toEqual(['test:progress']),
    );

    await first.hub.close();
    await screen.findByText('Connected: No');
    const second = await startHub(first.port);
    await screen.findByText('Connected: Yes');
    await waitFor(async () =>
      expect((await second.hub.clients())[0]?.subscriptions).toEqual(['test:progress']),
    );
    await second.hub.publish(progress(1, 90));
    await screen.findByText('Percent: 90');

    expect(seen.slice(0, 3)).toEqual(['idle', 'connecting', 'open']);
    expect(seen.at(-1)).toBe('open');
    expect(seen.slice(3, -1)).toContain('reconnecting');
    expect(await second.hub.clients()).toHaveLength(1);
  });

  it("runs the README's TestProgress component with no provider on one shared client at the URL from location", async () => {
    const { hub, url } = await startHub();
    const requested: string[] = [];
    // jsdom's location is http://localhost:3000/: record the URL the client derives, then dial the hub.
    class Redirect extends WebSocket {
      constructor(address: string) {
        requested.push(address);
        super(url);
      }
    }
    vi.stubGlobal('WebSocket', Redirect);
    disposer.add(() => getDefaultATPWebSocket().disconnect());
    const clients = new Set<unknown>();
    render(
      <>
        <ClientProbe found={clients} />
        <Status />
        <Percent suite={4} />
        <ClientProbe found={clients} />
      </>,
    );
    await screen.findByText('Connected: Yes');
    expect(clients).toEqual(new Set([getDefaultATPWebSocket()]));
    expect(requested).toEqual(['ws://localhost:3000/api/ws/updates']);
    await waitFor(async () => expect((await hub.clients())[0]?.subscriptions).toEqual(['test:progress']));
    await hub.publish(progress(4, 12));
    await screen.findByText('Percent: 12');
  });
});

describe('server rendering and hydration', () => {
  it('renders the idle state on the server without connecting, then hydrates and connects', async () => {
    const { hub, url } = await startHub();
    const { options, wire } = clientOptions(url);
    const app = (clientSide: ATPWebSocketOptions) => (
      <ATPWebSocketProvider options={clientSide}>
        <Status />
        <Percent suite={2} />
      </ATPWebSocketProvider>
    );
    const html = renderToString(app(options));
    expect(html).toContain('Connected: <!-- -->No');
    expect(wire.sockets).toHaveLength(0);

    const errors = vi.spyOn(console, 'error');
    const container = document.createElement('div');
    container.innerHTML = html;
    document.body.append(container);
    const root = hydrateRoot(container, app(options));
    disposer.add(() => {
      root.unmount();
      container.remove();
    });
    await waitFor(() => expect(container.textContent).toContain('Connected: Yes'));
    expect(errors).not.toHaveBeenCalled();
    expect(await hub.clients()).toHaveLength(1);
  });
});
