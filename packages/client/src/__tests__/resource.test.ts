import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MemoryBroker } from '@atp/ws-server';
import { completed, progress, type Run, runMessages, runOptions, serveRuns } from '@atp/test-utils';
import { openResource, type ResourceHandle, type ResyncReason } from '../index.js';
import { disposer, newClient, startHub } from './helpers.js';
import { serveLagging } from './lagging-provider.js';

const POLL = { timeout: 10_000, interval: 20 };

function open(ws: ReturnType<typeof newClient>, suite: number): ResourceHandle<Run> {
  const handle = openResource(ws, 'run', suite, runOptions(suite));
  disposer.add(() => handle.close());
  return handle;
}

function reasons(handle: ResourceHandle<Run>): ResyncReason[] {
  const seen: ResyncReason[] = [];
  handle.on('resync', (reason) => seen.push(reason));
  return seen;
}

/** Waits until the client's resource equals the server's truth and is live. */
async function settles(handle: ResourceHandle<Run>, truth: () => Run | undefined): Promise<void> {
  await expect.poll(() => handle.status, POLL).toBe('live');
  await expect.poll(() => handle.data, POLL).toEqual(truth() ?? { completed: [], progress: {} });
}

async function publishInChunks(
  hub: { publish: (m: ReturnType<typeof runMessages>) => Promise<void> },
  messages: ReturnType<typeof runMessages>,
): Promise<void> {
  for (let i = 0; i < messages.length; i += 500) await hub.publish(messages.slice(i, i + 500));
}

describe('openResource against a real hub', () => {
  it('joins late after much history: the snapshot, then only the live messages after it', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    await publishInChunks(hub, runMessages(1, 0, 10_000));
    await hub.publish(runMessages(2, 0, 10));
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 1);
    await settles(handle, () => runs.get(1));
    expect(handle.data?.completed).toHaveLength(5_000);
    const live = runMessages(1, 100_000, 200);
    const publishing = (async () => {
      for (const message of live) await hub.publish(message);
    })();
    await publishing;
    await settles(handle, () => runs.get(1));
    expect(handle.data?.completed).toHaveLength(5_100);
  });

  it('keeps publishing while it loads: messages around the snapshot are applied once, none skipped', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    let stop = false;
    const publishing = (async () => {
      for (let test = 0; !stop && test < 5000; test++)
        await hub.publish([progress(3, test, 10), completed(3, test)]);
    })();
    const handles = [];
    for (let i = 0; i < 5; i++) {
      handles.push(open(ws, 3));
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    stop = true;
    await publishing;
    for (const handle of handles) await settles(handle, () => runs.get(3));
  });

  it('survives a server restart on the memory broker (history lost): refetches and continues', async () => {
    const first = await startHub();
    const runs1 = serveRuns(first.hub);
    await first.hub.publish(runMessages(1, 0, 100));
    const ws = newClient(first.url);
    await ws.connect();
    const handle = open(ws, 1);
    const seen = reasons(handle);
    await settles(handle, () => runs1.get(1));
    await first.stop();
    const second = await startHub({}, first.port);
    const runs2 = serveRuns(second.hub);
    await second.hub.publish(runMessages(1, 500, 60));
    await settles(handle, () => runs2.get(1));
    expect(seen).toContain('gap');
    // Live messages of the new epoch go on being applied.
    await second.hub.publish(runMessages(1, 900, 10));
    await settles(handle, () => runs2.get(1));
  });

  it('survives being offline longer than the history kept', async () => {
    const { hub, url, cutConnections } = await startHub({ broker: new MemoryBroker({ maxMessages: 20 }) });
    const runs = serveRuns(hub);
    const ws = newClient(url, { retryDelay: () => 300 });
    await ws.connect();
    const handle = open(ws, 1);
    await hub.publish(runMessages(1, 0, 10));
    await settles(handle, () => runs.get(1));
    const seen = reasons(handle);
    cutConnections();
    await hub.publish(runMessages(1, 100, 200));
    await settles(handle, () => runs.get(1));
    expect(seen).toContain('gap');
    expect(handle.data?.completed).toHaveLength(105);
  });

  it('survives being a slow consumer: coalesced progress, then closed with 1013, resumed', async () => {
    const sockets: WebSocket[] = [];
    class TrackedWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    const { hub, url } = await startHub({ softBufferedBytes: 4_000, maxBufferedBytes: 100_000 });
    const runs = serveRuns(hub);
    const ws = newClient(url, { WebSocket: TrackedWebSocket as typeof WebSocket });
    const closes: number[] = [];
    ws.on('disconnect', ({ code }) => closes.push(code));
    await ws.connect();
    const handle = open(ws, 1);
    await settles(handle, () => runs.get(1));
    const raw = (sockets.at(-1) as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    // Progress of the same 20 tests over and over: superseded ones are coalesced while the client does not read.
    for (let round = 0; round < 300; round++) {
      const batch = [];
      for (let test = 0; test < 20; test++) batch.push(progress(1, test, (round % 100) + 0.5));
      if (round % 30 === 0) batch.push(completed(1, round));
      await hub.publish(batch);
    }
    const [info] = await hub.clients();
    const coalesced = info?.coalesced ?? 0;
    raw.resume();
    await settles(handle, () => runs.get(1));
    expect(coalesced).toBeGreaterThan(0);
    // Then flood it past the hard limit: closed with 1013, it resumes and the resource is still right.
    const again = (sockets.at(-1) as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    again.pause();
    for (let round = 0; round < 100 && !closes.includes(1013); round++) {
      const batch = [];
      for (let i = 0; i < 50; i++) batch.push(completed(1, 10_000 + round * 50 + i));
      await hub.publish(batch);
      await new Promise((resolve) => setImmediate(resolve));
    }
    again.resume();
    await expect.poll(() => closes, POLL).toContain(1013);
    await settles(handle, () => runs.get(1));
  });

  it('refetches only the resource whose delta version jumped; others are not touched', async () => {
    const { hub, url } = await startHub();
    const versions = new Map<string, { version: number; status: string }>();
    hub.resources.follow((messages) => {
      for (const m of messages) {
        if (m.type !== 'delta_update') continue;
        versions.set(String(m.payload.resource_id), {
          version: m.payload.sequence,
          status: String(m.payload.changes.status),
        });
      }
    });
    hub.resources.register('test_execution', (id) => {
      const state = versions.get(id) ?? { version: 0, status: 'pending' };
      return { data: { status: state.status }, version: state.version };
    });
    const delta = (id: number, sequence: number, status: string, base?: number) => ({
      type: 'delta_update' as const,
      payload: {
        resource_type: 'test_execution',
        resource_id: id,
        sequence,
        ...(base === undefined ? {} : { base_sequence: base }),
        changes: { status },
      },
    });
    const ws = newClient(url);
    await ws.connect();
    const options = (id: number) => ({
      subscriptions: [{ topic: 'delta', filter: { resource_type: 'test_execution' } }],
      matches: (m: { type: string; payload: unknown }) =>
        m.type === 'delta_update' && (m.payload as { resource_id: unknown }).resource_id === id,
      reduce: (data: { status: string }, m: Parameters<Parameters<typeof openResource>[3]['reduce']>[1]) =>
        m.type === 'delta_update' ? { ...data, ...(m.payload.changes as { status: string }) } : data,
    });
    const a = openResource(ws, 'test_execution', 1, options(1));
    const b = openResource(ws, 'test_execution', 2, options(2));
    disposer.add(() => {
      a.close();
      b.close();
    });
    await expect.poll(() => [a.status, b.status], POLL).toEqual(['live', 'live']);
    const seenA = [] as ResyncReason[];
    const seenB = [] as ResyncReason[];
    a.on('resync', (r) => seenA.push(r));
    b.on('resync', (r) => seenB.push(r));
    await hub.publish([delta(1, 1, 'queued'), delta(2, 1, 'queued'), delta(2, 2, 'running', 1)]);
    await expect.poll(() => [a.data, b.data], POLL).toEqual([{ status: 'queued' }, { status: 'running' }]);
    expect(a.version).toBe(1);
    expect(b.version).toBe(2);
    // Version 2 of resource 1 is never published: version 3 (applying to 2) is a gap for resource 1 only.
    await hub.publish([delta(1, 3, 'completed', 2), delta(2, 3, 'completed', 2)]);
    await expect
      .poll(() => [a.data, b.data], POLL)
      .toEqual([{ status: 'completed' }, { status: 'completed' }]);
    expect(seenA).toEqual(['version_gap']);
    expect(seenB).toEqual([]);
    expect(a.version).toBe(3);
  });

  it('goes live with 120 resources opened at once: a get_resource the rate limit dropped is fetched again', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    // One shared subscription, so 120 get_resource requests leave at once: more than the server's burst.
    const handles = Array.from({ length: 120 }, (_, i) => {
      const suite = i + 1;
      const handle = openResource(ws, 'run', suite, {
        ...runOptions(suite),
        subscriptions: [{ topic: 'test:completed' }],
        matches: (m) => m.type === 'test_completed' && m.payload.suite_execution_id === suite,
      });
      disposer.add(() => handle.close());
      return handle;
    });
    await expect
      .poll(() => handles.filter((h) => h.status !== 'live').length, { timeout: 15_000, interval: 50 })
      .toBe(0);
    await hub.publish([completed(7, 1), completed(120, 2)]);
    await expect
      .poll(() => [handles[6]?.data, handles[119]?.data], POLL)
      .toEqual([runs.get(7), runs.get(120)]);
  }, 20_000);

  it('refetches 120 resources asked while reconnecting: none stays resyncing (no request lost in the send queue)', async () => {
    const { hub, url, cutConnections } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url, { retryDelay: () => 300 });
    await ws.connect();
    const handles = Array.from({ length: 120 }, (_, i) => {
      const suite = i + 1;
      const handle = openResource(ws, 'run', suite, {
        ...runOptions(suite),
        subscriptions: [{ topic: 'test:completed' }],
        matches: (m) => m.type === 'test_completed' && m.payload.suite_execution_id === suite,
      });
      disposer.add(() => handle.close());
      return handle;
    });
    const notLive = () => handles.filter((h) => h.status !== 'live').length;
    await expect.poll(notLive, { timeout: 15_000, interval: 50 }).toBe(0);
    cutConnections();
    await expect.poll(() => ws.state, POLL).toBe('reconnecting');
    for (const handle of handles) handle.refetch(); // more than the send queue holds (100)
    await hub.publish([completed(1, 1), completed(120, 2)]);
    await expect.poll(notLive, { timeout: 15_000, interval: 50 }).toBe(0);
    expect([handles[0]?.data, handles[119]?.data]).toEqual([runs.get(1), runs.get(120)]);
  }, 40_000);

  it('a refetch answered with a snapshot older than what was applied loses nothing', async () => {
    const { hub, url } = await startHub();
    const lag = { n: 0 };
    const truth = serveLagging(hub, lag);
    const ws = newClient(url);
    await ws.connect();
    const handle = openResource(ws, 'lagging', 1, runOptions(1));
    disposer.add(() => handle.close());
    await expect.poll(() => handle.status, POLL).toBe('live');
    for (let test = 0; test < 20; test++) await hub.publish(completed(1, test));
    await expect.poll(() => handle.data?.completed.length, POLL).toBe(20);
    lag.n = 5;
    handle.refetch();
    await new Promise((resolve) => setTimeout(resolve, 100));
    lag.n = 0;
    await hub.publish(completed(1, 100));
    await expect.poll(() => handle.status, POLL).toBe('live');
    await expect.poll(() => handle.data?.completed, POLL).toEqual(truth);
  });

  it('reports an unknown kind as an error status with the server code, and recovers after a refetch', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 4);
    await expect.poll(() => handle.status, POLL).toBe('error');
    expect(handle.error?.serverCode).toBe('unknown_resource');
    const runs = serveRuns(hub);
    await hub.publish(runMessages(4, 0, 6));
    handle.refetch();
    await settles(handle, () => runs.get(4));
  });
});
