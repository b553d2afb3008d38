// Live resources whose snapshot comes from a provider that lags the stream, in the cases where the
// handle itself cannot see where its subscriptions took effect (found by the fifth resource attack):
// a subscription already in force on the connection, and messages that arrived while the handle
// could not keep them (a failed fetch). Also the delta and change-event rules that attack broke.
import { completed, runOptions } from '@atp/test-utils';
import { describe, expect, it } from 'vitest';
import { openResource, ResourceSync } from '../index.js';
import type { DeliveredDataMessage } from '@atp/ws-protocol';
import type { ATPWebSocket, MessageMeta } from '../index.js';
import { MemoryBroker } from '@atp/ws-server';
import { disposer, log, newClient, startHub } from './helpers.js';
import { serveLagging } from './lagging-provider.js';

const POLL = { timeout: 8_000, interval: 20 };

/** Subscribes the application itself to what a `runOptions(suite)` resource subscribes to, until the test ends. */
async function holdSubscriptions(ws: ATPWebSocket, suite: number): Promise<void> {
  const held = runOptions(suite).subscriptions.map(({ topic, filter }) =>
    ws.subscribe(topic as never, filter as never),
  );
  disposer.add(() => {
    for (const subscription of held) subscription();
  });
  await Promise.all(held.map((subscription) => subscription.ready));
}
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a lagging provider and what the handle could not see', () => {
  it('a subscription already in force on the connection: a snapshot older than the connection is fetched again', async () => {
    const { hub, url } = await startHub();
    const lag = { n: 10 };
    const truth = serveLagging(hub, lag);
    const ws = newClient(url);
    await ws.connect();
    // The application already holds the resource's subscriptions: the handle's are shared, so no
    // `subscribed` tells it where they took effect.
    await holdSubscriptions(ws, 1);
    let received = 0;
    ws.on('test_completed', () => {
      received += 1;
    });
    for (let test = 0; test < 30; test++) await hub.publish(completed(1, test));
    await expect.poll(() => received, POLL).toBe(30);
    const handle = openResource(ws, 'lagging', 1, { ...runOptions(1), retryDelay: () => 20 });
    disposer.add(() => handle.close());
    await pause(150);
    lag.n = 0; // the provider's store catches up
    await hub.publish(completed(1, 100));
    await expect.poll(() => handle.status, POLL).toBe('live');
    await expect.poll(() => handle.data?.completed, POLL).toEqual(truth);
  });

  it('messages that arrive while a fetch failed: a later snapshot older than them is fetched again', async () => {
    const { hub, url } = await startHub();
    const lag = { n: 0 };
    const truth = serveLagging(hub, lag);
    const ws = newClient(url);
    await ws.connect();
    let fail = false;
    const handle = openResource(ws, 'lagging', 1, {
      ...runOptions(1),
      retryDelay: () => 150,
      fetch: async (kind, id) => {
        if (fail) {
          fail = false;
          throw new Error('the provider is down for a moment');
        }
        return hub.resources.snapshot(kind, id);
      },
    });
    disposer.add(() => handle.close());
    handle.on('error', () => {});
    for (let test = 0; test < 5; test++) await hub.publish(completed(1, test));
    await expect.poll(() => handle.data?.completed.length, POLL).toBe(5);
    fail = true;
    lag.n = 5; // from now on the provider answers from 5 messages back: after the data held, before the newest
    handle.refetch();
    await expect.poll(() => handle.status, POLL).toBe('error');
    // Delivered while the handle is in error: it cannot apply them.
    for (let test = 5; test < 15; test++) await hub.publish(completed(1, test));
    await pause(300); // the retry answers a snapshot older than those
    lag.n = 0;
    await hub.publish(completed(1, 100));
    await expect.poll(() => handle.status, POLL).toBe('live');
    await expect.poll(() => handle.data?.completed, POLL).toEqual(truth);
  });

  it('a reducer that changes the data in place and returns it still announces each change', async () => {
    const { hub, url } = await startHub();
    serveLagging(hub, { n: 0 });
    const ws = newClient(url);
    await ws.connect();
    const handle = openResource<{ completed: number[] }>(ws, 'lagging', 1, {
      subscriptions: runOptions(1).subscriptions,
      reduce: (run, message) => {
        if (message.type === 'test_completed') run.completed.push(message.payload.test_execution_id);
        return run;
      },
    });
    disposer.add(() => handle.close());
    await expect.poll(() => handle.status, POLL).toBe('live');
    const seen: number[] = [];
    handle.on('change', (view) => seen.push(view.data?.completed.length ?? -1));
    for (let test = 0; test < 5; test++) await hub.publish(completed(1, test));
    await expect.poll(() => handle.data?.completed.length, POLL).toBe(5);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('after a gap', () => {
  it('a snapshot older than where the connection resumed (history trimmed while away) is not taken', async () => {
    const { hub, url, cutConnections } = await startHub({ broker: new MemoryBroker({ maxMessages: 50 }) });
    // A provider whose store answers as of 60 messages back, with the position that state reflects.
    let count = 0;
    const states: Array<[number, number]> = [];
    hub.resources.follow((messages, position) => {
      let offset = position.offset - messages.length;
      for (const message of messages) {
        offset += 1;
        if (message.type === 'log_entry') count += 1;
        states.push([offset, count]);
      }
    });
    hub.resources.register('logs', async (_id, { position }) => {
      const state = [...states].reverse().find(([offset]) => offset <= position.offset - 60) ?? [0, 0];
      return { data: state[1], position: { epoch: position.epoch, offset: state[0] } };
    });
    let n = 0;
    const publish = async (k: number) => {
      for (let i = 0; i < k; i++) await hub.publish(log(1, `m${n++}`));
    };
    const ws = newClient(url, { retryDelay: () => 300 }); // reconnects once the publishes below are done
    const handle = openResource<number>(ws, 'logs', 1, {
      subscriptions: [{ topic: 'logs', filter: { suite_execution_id: 1 } }],
      reduce: (total) => total + 1,
      retryDelay: () => 20,
    });
    disposer.add(() => handle.close());
    await ws.connect();
    for (let i = 0; i < 200 && handle.status !== 'live'; i++) {
      await publish(1);
      await pause(10);
    }
    expect(handle.status).toBe('live');
    const resyncs: string[] = [];
    handle.on('resync', (reason) => resyncs.push(reason));
    cutConnections();
    await publish(200); // the history behind the connection is trimmed: its resume is a gap
    await expect.poll(() => resyncs.includes('gap'), POLL).toBe(true);
    await pause(300);
    // The provider is still 60 messages behind where the connection resumed: not taken.
    expect(handle.status === 'live' && handle.data !== count).toBe(false);
    await publish(100); // the provider's answers pass that point
    await expect.poll(() => handle.status, POLL).toBe('live');
    await expect.poll(() => handle.data, POLL).toBe(count);
  });
});

describe('the epoch of the connection when the handle opens', () => {
  it('a snapshot of another epoch is not taken when the subscriptions were already in force', async () => {
    const { hub, url } = await startHub();
    const truth = serveLagging(hub, { n: 0 });
    const ws = newClient(url);
    await ws.connect();
    await holdSubscriptions(ws, 1);
    for (let test = 0; test < 10; test++) await hub.publish(completed(1, test));
    await expect.poll(() => ws.position?.offset, POLL).toBe(10);
    let calls = 0;
    // The first answers come from a process still in another epoch, at an offset below the connection's.
    const handle = openResource(ws, 'lagging', 1, {
      ...runOptions(1),
      retryDelay: () => 20,
      fetch: async (kind, id) =>
        ++calls <= 2
          ? {
              kind,
              resource_id: id,
              data: { completed: [0], progress: {} },
              epoch: 'an-old-epoch',
              offset: 3,
            }
          : hub.resources.snapshot(kind, id),
    });
    disposer.add(() => handle.close());
    await expect.poll(() => calls, POLL).toBeGreaterThanOrEqual(3);
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(handle.data?.completed).toEqual(truth);
  });
});

describe('retryDelay beyond what a timer takes', () => {
  it('Infinity or 30 days waits (as long as a timer can), it does not retry at once', async () => {
    const { hub, url } = await startHub();
    serveLagging(hub, { n: 0 });
    const ws = newClient(url);
    await ws.connect();
    for (const delay of [Number.POSITIVE_INFINITY, 2.6e9]) {
      let fetches = 0;
      const handle = openResource(ws, 'lagging', 1, {
        ...runOptions(1),
        retryDelay: () => delay,
        fetch: async () => {
          fetches += 1;
          throw new Error('down');
        },
      });
      handle.on('error', () => {});
      await pause(200);
      handle.close();
      expect(fetches).toBe(1);
    }
  });
});

describe('delta_update at the version held', () => {
  const meta = (offset: number): MessageMeta => ({
    type: 'delta_update',
    epoch: 'e',
    offset,
    sequence: offset,
  });
  const delta = (sequence: number, changes: Record<string, unknown>): DeliveredDataMessage =>
    ({
      type: 'delta_update',
      payload: { resource_type: 'thing', resource_id: '1', sequence, changes },
      epoch: 'e',
      offset: 0,
      sequence: 0,
    }) as DeliveredDataMessage;
  const live = (version: number) => {
    const sync = new ResourceSync<Record<string, unknown>>('thing', '1', (state, message) =>
      message.type === 'delta_update' ? { ...state, ...message.payload.changes } : state,
    );
    const token = sync.begin();
    expect(
      sync.snapshot(token, { kind: 'thing', resource_id: '1', data: {}, version, epoch: 'e', offset: 10 }),
    ).toBe(undefined);
    return sync;
  };

  it('another delta claiming the version just applied is a version gap, not a repeat', () => {
    const sync = live(1);
    expect(sync.message(delta(2, { status: 'running' }), meta(11))).toBe(undefined);
    expect(sync.message(delta(2, { status: 'failed' }), meta(12))).toBe('version_gap');
  });

  it('the very delta the version came from, published again, is skipped', () => {
    const sync = live(1);
    expect(sync.message(delta(2, { status: 'running' }), meta(11))).toBe(undefined);
    expect(sync.message(delta(2, { status: 'running' }), meta(12))).toBe(undefined);
    expect(sync.data).toEqual({ status: 'running' });
    expect(sync.offset).toBe(12);
  });

  it('a delta at the version of the snapshot (whose delta is unknown) refetches: the resource may have been made again', () => {
    const sync = live(1);
    expect(sync.message(delta(1, { status: 'second-life' }), meta(11))).toBe('version_gap');
  });
});
