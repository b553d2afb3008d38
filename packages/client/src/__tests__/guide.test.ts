// biome-ignore-all lint/correctness/noUnusedFunctionParameters: the snippets run as printed, unused parameters included
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { ATPWebSocket } from '../index.js';
import { confirmed, newClient, next, progress, record, startHub, until } from './helpers.js';

// The JavaScript snippets of the client README and docs/GUIDE.md, run against a real hub. Only what a snippet
// leaves to the page is supplied: `location` and a global WebSocket (Node 20 has none).
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function asPage(port: number): void {
  vi.stubGlobal('location', {
    protocol: 'http:',
    host: `127.0.0.1:${port}`,
    href: `http://127.0.0.1:${port}/`,
  });
  vi.stubGlobal('WebSocket', WebSocket);
}

const suiteCompleted = {
  type: 'suite_completed' as const,
  payload: {
    suite_execution_id: 123,
    suite_name: 'Auth Tests',
    agent_name: 'gpt-4',
    success_rate: 0.9,
    total_tests: 10,
    passed_tests: 9,
    failed_tests: 1,
    duration_seconds: 125.5,
  },
};

describe('the documented snippets, verbatim', () => {
  it('Client Example (JavaScript): auto-detected URL, handlers, subscribe, connect', async () => {
    const { hub, port } = await startHub();
    asPage(port);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});

    const ws = new ATPWebSocket();

    ws.on('test_progress', (data) => {
      console.log('Test progress:', data.progress_percent);
    });

    ws.on('suite_completed', (data) => {
      console.log('Suite completed:', data.success_rate);
    });

    const subscribed = confirmed(ws, 2);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    ws.connect();

    try {
      await next(ws, 'connect');
      ws.subscribe('suite:completed');
      await subscribed;
      await hub.publish([progress(1, 999), progress(2, 123), suiteCompleted]);
      await until(() => log.mock.calls.length === 2, 'two console.log calls');
      expect(log.mock.calls).toEqual([
        ['Test progress:', 50],
        ['Suite completed:', 0.9],
      ]);
    } finally {
      ws.disconnect();
    }
  });

  it('ATPWebSocket Class: the options block constructs a client with exactly those options', () => {
    const ws = new ATPWebSocket({
      url: 'ws://localhost:8000/api/ws/updates', // Auto-detected if omitted
      autoReconnect: true, // Default: true
      reconnectInterval: 1000, // Initial retry delay (ms)
      maxReconnectInterval: 30000, // Max retry delay (ms)
      reconnectDecay: 1.5, // Exponential backoff factor
      maxReconnectAttempts: null, // null = infinite
      pingInterval: 25000, // Heartbeat interval (ms)
    });
    expect(ws.state).toBe('idle');
  });

  it('Methods: connect, subscribe, unsubscribe, on with (data, meta), off, disconnect', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});

    // Connect to WebSocket server
    await ws.connect();

    const subscribed = confirmed(ws);
    // Subscribe to a topic
    ws.subscribe('test:progress', { suite_execution_id: 123 });

    // Register event handler
    const handler = (data: { progress_percent: number }, meta: { sequence: number }) => {
      console.log('Progress:', data.progress_percent);
      console.log('Sequence:', meta.sequence);
    };
    ws.on('test_progress', handler);

    await subscribed;
    await hub.publish(progress(1));
    await until(() => log.mock.calls.length === 2, 'handler output');
    expect(log.mock.calls).toEqual([
      ['Progress:', 50],
      ['Sequence:', 1],
    ]);

    // Remove event handler
    ws.off('test_progress', handler);

    // Unsubscribe from a topic
    ws.unsubscribe('test:progress');

    // Disconnect
    ws.disconnect();
    expect(ws.state).toBe('closed');
    expect(log.mock.calls).toHaveLength(2);
  });

  it('Events: connection events, and sequence gap detection (after a server restart)', async () => {
    const first = await startHub();
    const ws = newClient(first.url);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});

    // Connection events
    ws.on('connect', () => console.log('Connected'));
    ws.on('disconnect', ({ code, reason }) => console.log('Disconnected'));
    ws.on('error', ({ event }) => console.error('Error:', event));
    ws.on('reconnecting', ({ attempt }) => console.log('Reconnecting...'));
    ws.on('reconnect_failed', ({ attempts }) => console.log('Failed to reconnect'));

    // Sequence gap detection (for delta updates)
    ws.on('sequence_gap', ({ expected, received }) => {
      console.warn(`Missed sequences ${expected} to ${received - 1}`);
      // Trigger full data refresh
    });

    const subscribed = confirmed(ws);
    ws.subscribe('delta', { resource_type: 'test_execution' });
    await ws.connect();
    await subscribed;
    const delta = {
      resource_type: 'test_execution',
      resource_id: 456,
      sequence: 42,
      changes: { status: 'running' },
    };
    await first.hub.publish({ type: 'delta_update', payload: delta });
    await until(() => ws.lastSequence === 1, 'the first delta');

    // A restarted server has lost its in-memory history: the resume cannot recover, and says so.
    await first.stop();
    const second = await startHub({}, first.port);
    await next(ws, 'connect');
    await until(() => warn.mock.calls.length === 1, 'the gap warning');
    expect(warn).toHaveBeenCalledWith('Missed sequences 2 to 2');
    await second.hub.publish({ type: 'delta_update', payload: { ...delta, sequence: 43 } });
    await until(() => ws.lastSequence === 3, 'a delta after the restart');
    const lines = log.mock.calls.map(([line]) => line);
    expect(lines.slice(0, 3)).toEqual(['Connected', 'Disconnected', 'Reconnecting...']);
    expect(lines.at(-1)).toBe('Connected');
    expect(lines).not.toContain('Failed to reconnect');
    // Attempts while the port was closed failed with socket errors, reported through 'error'.
    expect(error.mock.calls.every(([label]) => label === 'Error:')).toBe(true);
  });

  it('Best Practices 3: a lost connection is reported as disconnect code 1006', async () => {
    const { url, cutConnections } = await startHub();
    const ws = newClient(url);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});

    ws.on('disconnect', ({ code }) => {
      if (code === 1006) {
        console.warn('Connection lost unexpectedly');
      }
    });

    await ws.connect();
    cutConnections();
    await next(ws, 'disconnect');
    expect(warn).toHaveBeenCalledWith('Connection lost unexpectedly');
  });

  it('Best Practices 2 and 4: a sequence_gap handler refetches; subscribe/unsubscribe clean up', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url);
    const rec = record(ws);
    const fetched: number[] = [];
    const executionId = 123;
    const fetch = async (path: string) => ({ json: async () => ({ path }) });
    const updateState = (full: { path: string }) => fetched.push(Number(full.path.split('/').at(-1)));

    ws.on('sequence_gap', async ({ expected, received }) => {
      // Fetch full data to recover from gap
      const response = await fetch(`/api/executions/${executionId}`);
      const fullData = await response.json();
      updateState(fullData);
    });

    // Good - filtered subscription
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    // "In React useEffect cleanup" without React: subscribe, then the cleanup.
    const cleanup = (() => {
      ws.subscribe('test:progress');
      return () => ws.unsubscribe('test:progress');
    })();
    const subscribed = confirmed(ws, 2);
    await ws.connect();
    await subscribed;
    cleanup();
    expect(ws.subscriptions).toEqual([]);
    // The server handles subscription messages in order: once this one is confirmed, the unsubscribe was done.
    const barrier = confirmed(ws);
    ws.subscribe('suite:completed');
    await barrier;
    await hub.publish([progress(1), suiteCompleted]);
    await until(() => rec.data.length === 1, 'the suite_completed');
    expect(rec.data.map((d) => d.type)).toEqual(['suite_completed']);
    expect(fetched).toEqual([]);
  });
});
