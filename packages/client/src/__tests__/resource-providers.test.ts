// Live resources with providers that lag the stream or never answer (found by attacking the product).
import { describe, expect, it } from 'vitest';
import { openResource } from '../index.js';
import { disposer, newClient, startHub } from './helpers.js';
import { serveLagging } from './lagging-provider.js';
import { completed, runOptions, serveRuns } from '@atp/test-utils';

const POLL = { timeout: 8_000, interval: 20 };

describe('live resources with lagging and hung providers', () => {
  it('a snapshot older than the subscriptions (lagging provider) is fetched again, not taken as live', async () => {
    const { hub, url } = await startHub();
    const lag = { n: 5 };
    const truth = serveLagging(hub, lag);
    const ws = newClient(url);
    await ws.connect();
    for (let test = 0; test < 20; test++) await hub.publish(completed(1, test));
    const handle = openResource(ws, 'lagging', 1, runOptions(1));
    disposer.add(() => handle.close());
    await new Promise((resolve) => setTimeout(resolve, 100));
    lag.n = 0; // the provider's store catches up
    await hub.publish(completed(1, 100));
    await expect.poll(() => handle.status, POLL).toBe('live');
    await expect.poll(() => handle.data?.completed, POLL).toEqual(truth);
  });

  it('a provider that never answers does not keep other resources of the connection from loading', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    hub.resources.register('hangs', () => new Promise<undefined>(() => {}));
    const ws = newClient(url);
    await ws.connect();
    const hung = openResource(ws, 'hangs', 1, runOptions(1));
    const other = openResource(ws, 'run', 2, runOptions(2));
    disposer.add(() => {
      hung.close();
      other.close();
    });
    await hub.publish(completed(2, 1));
    await expect.poll(() => other.status, POLL).toBe('live');
    await expect.poll(() => other.data, POLL).toEqual(runs.get(2));
  });
});

describe('snapshots from another epoch', () => {
  it('a snapshot of an epoch the connection is not in (an old process) is fetched again, never shown as live', async () => {
    const old = await startHub();
    const current = await startHub();
    const oldRuns = serveRuns(old.hub);
    const runs = serveRuns(current.hub);
    await old.hub.publish(completed(1, 1));
    for (let test = 1; test <= 3; test++) await current.hub.publish(completed(1, test));
    const oldEpoch = (await old.hub.resources.snapshot('run', '1')).epoch;
    const ws = newClient(current.url);
    await ws.connect();
    let fetches = 0;
    // The first answer comes from a process of another epoch (behind a load balancer, say).
    const handle = openResource(ws, 'run', 1, {
      ...runOptions(1),
      fetch: (kind, id) => (fetches++ === 0 ? old : current).hub.resources.snapshot(kind, id),
      retryDelay: () => 20,
    });
    disposer.add(() => handle.close());
    const liveEpochs: Array<string | undefined> = [];
    handle.on('change', ({ status }) => {
      if (status === 'live') liveEpochs.push(handle.position?.epoch);
    });
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(oldRuns.get(1)).not.toEqual(runs.get(1));
    expect(handle.data).toEqual(runs.get(1));
    expect(liveEpochs).not.toContain(oldEpoch);
    expect(fetches).toBe(2);
  });
});
