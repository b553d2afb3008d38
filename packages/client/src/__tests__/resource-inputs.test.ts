// What the application hands a resource handle: what its own `fetch` resolves with (or never
// resolves), its options, and delta versions that go backwards or belong to another resource
// (found by attacking the resource handle).
import { completed, type Run, runOptions, serveRuns } from '@atp/test-utils';
import type { DataMessage, ResourceSnapshot } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import {
  type ATPWebSocketError,
  openResource,
  type ResourceFetcher,
  type ResourceHandle,
  type ResourceOptions,
  type ResyncReason,
} from '../index.js';
import { disposer, newClient, startHub } from './helpers.js';

const POLL = { timeout: 8_000, interval: 10 };

function open<T>(ws: ReturnType<typeof newClient>, kind: string, id: number, options: ResourceOptions<T>) {
  const handle = openResource(ws, kind, id, options);
  disposer.add(() => handle.close());
  return handle;
}

function errorsOf<T>(handle: ResourceHandle<T>): ATPWebSocketError[] {
  const errors: ATPWebSocketError[] = [];
  handle.on('error', (error) => errors.push(error));
  return errors;
}

/** A hub serving runs, a connected client, and a fetch whose first answer is `first`, the later ones the hub's. */
async function withFirstAnswer(first: (real: ResourceSnapshot) => unknown) {
  const { hub, url } = await startHub();
  const runs = serveRuns(hub);
  await hub.publish([completed(1, 1), completed(1, 2)]);
  const ws = newClient(url);
  await ws.connect();
  const signals: AbortSignal[] = [];
  const fetch: ResourceFetcher = async (kind, id, { signal }) => {
    signals.push(signal);
    const real = await hub.resources.snapshot(kind, id);
    return (signals.length === 1 ? first(real) : real) as ResourceSnapshot;
  };
  const handle = open(ws, 'run', 1, { ...runOptions(1), fetch, retryDelay: () => 20 });
  const errors = errorsOf(handle);
  return { hub, runs, ws, handle, errors, signals };
}

describe('what a custom fetch resolves with', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  it.each<[string, (real: ResourceSnapshot) => unknown]>([
    ['null', () => null],
    ['a string', () => 'snapshot'],
    ['offset Infinity', (real) => ({ ...real, offset: Number.POSITIVE_INFINITY })],
    ['offset as a string', (real) => ({ ...real, offset: String(real.offset) })],
    ['a negative offset', (real) => ({ ...real, offset: -1 })],
    ['no epoch', (real) => ({ ...real, epoch: undefined })],
    ['an empty epoch', (real) => ({ ...real, epoch: '' })],
    ['version -5', (real) => ({ ...real, version: -5 })],
    ['version 1.5', (real) => ({ ...real, version: 1.5 })],
    ["another resource's snapshot", (real) => ({ ...real, resource_id: '2' })],
    ['another kind', (real) => ({ ...real, kind: 'other' })],
    ['no data', (real) => ({ ...real, data: undefined })],
  ])('%s: snapshot_failed, reported, retried, then live with the server data', async (_name, first) => {
    process.on('unhandledRejection', onUnhandled);
    try {
      const { hub, runs, handle, errors, signals } = await withFirstAnswer(first);
      await expect.poll(() => handle.status, POLL).toBe('live');
      await hub.publish(completed(1, 3));
      await expect.poll(() => handle.data, POLL).toEqual(runs.get(1));
      expect(errors.map((e) => e.code)).toEqual(['snapshot_failed']);
      expect(signals).toHaveLength(2);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('data null is data (JSON null), taken as the snapshot', async () => {
    const { handle, errors } = await withFirstAnswer((real) => ({ ...real, data: null }));
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(handle.data).toBeNull();
    expect(errors).toEqual([]);
  });

  it('each fetch gets a signal of its own', async () => {
    const { handle, signals } = await withFirstAnswer(() => null);
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
  });
});

describe('a custom fetch that never settles', () => {
  /** A fetch that hangs the first time (ignoring its signal), then answers from the hub. */
  async function hangingFirst(options: Partial<ResourceOptions<Run>> = {}) {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    await hub.publish(completed(1, 1));
    const ws = newClient(url);
    await ws.connect();
    const signals: AbortSignal[] = [];
    const fetch: ResourceFetcher = (kind, id, { signal }) => {
      signals.push(signal);
      if (signals.length === 1) return new Promise<ResourceSnapshot>(() => {});
      return hub.resources.snapshot(kind, id);
    };
    const handle = open(ws, 'run', 1, { ...runOptions(1), fetch, retryDelay: () => 20, ...options });
    const reasons: ResyncReason[] = [];
    handle.on('resync', (reason) => reasons.push(reason));
    const errors = errorsOf(handle);
    return { hub, runs, ws, handle, signals, reasons, errors };
  }

  it('is aborted after fetchTimeout (status error, fetch_timeout) and fetched again', async () => {
    const { hub, runs, handle, signals } = await hangingFirst({ fetchTimeout: 300 });
    const errors: Array<string | undefined> = [];
    handle.on('change', ({ error }) => errors.push(error?.code));
    await expect.poll(() => signals.length, POLL).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(handle.status).toBe('loading');
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(signals[0]?.aborted).toBe(true);
    expect(errors).toContain('fetch_timeout');
    await hub.publish(completed(1, 2));
    await expect.poll(() => handle.data, POLL).toEqual(runs.get(1));
  });

  it('is abandoned (aborted) when the client starts a new session, and the resource fetched again at once', async () => {
    const { hub, runs, ws, handle, signals } = await hangingFirst({ fetchTimeout: 60_000 });
    await expect.poll(() => signals.length, POLL).toBe(1);
    ws.disconnect();
    await ws.connect();
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(signals[0]?.aborted).toBe(true);
    await hub.publish(completed(1, 2));
    await expect.poll(() => handle.data, POLL).toEqual(runs.get(1));
  });

  it('refetch() while it hangs waits for it (one fetch at a time); close() aborts it', async () => {
    const { handle, signals } = await hangingFirst({ fetchTimeout: 60_000 });
    await expect.poll(() => signals.length, POLL).toBe(1);
    handle.refetch(); // one more fetch follows the answer of the one under way
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(handle.status).toBe('loading');
    expect(signals).toHaveLength(1);
    handle.close();
    expect(signals[0]?.aborted).toBe(true);
  });
});

describe('options checked when the handle opens', () => {
  it.each<[string, Partial<Record<keyof ResourceOptions<unknown>, unknown>>]>([
    ['retryDelay as a number', { retryDelay: 100 }],
    ['reduce missing', { reduce: undefined }],
    ['subscriptions not an array', { subscriptions: 'test:completed' }],
    ['a subscription without a topic', { subscriptions: [{ filter: {} }] }],
    ['matches not a function', { matches: true }],
    ['fetch not a function', { fetch: 'http://x' }],
    ['fromSnapshot not a function', { fromSnapshot: {} }],
    ['fetchTimeout not a positive number', { fetchTimeout: 0 }],
  ])('%s: a TypeError naming the option', async (_name, bad) => {
    const { url } = await startHub();
    const ws = newClient(url);
    const key = Object.keys(bad)[0] as string;
    const options = { ...runOptions(1), ...bad } as unknown as ResourceOptions<Run>;
    expect(() => openResource(ws, 'run', 1, options)).toThrow(new RegExp(`${key}`));
    expect(() => openResource(ws, 'run', 1, options)).toThrow(TypeError);
  });

  it('a kind or id the server could not take is a TypeError', async () => {
    const { url } = await startHub();
    const ws = newClient(url);
    expect(() => openResource(ws, 'no spaces', 1, runOptions(1))).toThrow(TypeError);
    expect(() => openResource(ws, 'run', '', runOptions(1))).toThrow(TypeError);
    expect(() => openResource(ws, 'run', 'x'.repeat(129), runOptions(1))).toThrow(TypeError);
  });
});

describe('delta versions', () => {
  type Entity = Record<string, unknown>;
  const delta = (id: number, sequence: number, changes: Entity, base?: number): DataMessage => ({
    type: 'delta_update',
    payload: {
      resource_type: 'te',
      resource_id: id,
      sequence,
      ...(base === undefined ? {} : { base_sequence: base }),
      changes,
    },
  });

  /** A server-side store of `te` resources kept from the deltas, served as a resource kind. */
  async function deltaHub() {
    const { hub, url } = await startHub();
    const store = new Map<string, { data: Entity; version: number }>();
    hub.resources.follow((messages) => {
      for (const m of messages) {
        if (m.type !== 'delta_update') continue;
        const key = String(m.payload.resource_id);
        const base = m.payload.base_sequence ?? m.payload.sequence - 1;
        const held = store.get(key);
        const data = base === 0 || !held ? { ...m.payload.changes } : { ...held.data, ...m.payload.changes };
        store.set(key, { data, version: m.payload.sequence });
      }
    });
    hub.resources.register('te', (id) => store.get(id) ?? { data: {}, version: 0 });
    const ws = newClient(url);
    await ws.connect();
    return { hub, store, ws };
  }

  const reduce = (data: Entity, m: { type: string; payload: unknown }) =>
    m.type === 'delta_update' ? { ...data, ...(m.payload as { changes: Entity }).changes } : data;

  it('a delta whose version goes back (the resource was made again) refetches, never drops it', async () => {
    const { hub, store, ws } = await deltaHub();
    const handle = open(ws, 'te', 1, {
      subscriptions: [{ topic: 'delta', filter: { resource_type: 'te' } }],
      reduce,
    });
    const reasons: ResyncReason[] = [];
    handle.on('resync', (reason) => reasons.push(reason));
    await expect.poll(() => handle.status, POLL).toBe('live');
    await hub.publish([
      delta(1, 1, { name: 'old', status: 'done' }),
      delta(1, 2, { score: 1 }),
      delta(1, 3, { score: 2 }),
    ]);
    await expect.poll(() => handle.version, POLL).toBe(3);
    await hub.publish([
      delta(1, 1, { name: 'new', status: 'queued' }, 0),
      delta(1, 2, { status: 'running' }),
    ]);
    await expect.poll(() => handle.data, POLL).toEqual(store.get('1')?.data);
    expect(handle.data).toEqual({ name: 'new', status: 'running' });
    expect(handle.version).toBe(2);
    expect(reasons).toContain('version_gap');
  });

  it('the same delta published twice in a row is applied once, without a refetch', async () => {
    const { hub, ws } = await deltaHub();
    const handle = open(ws, 'te', 1, {
      subscriptions: [{ topic: 'delta', filter: { resource_type: 'te' } }],
      reduce: (data: Entity, m) =>
        m.type === 'delta_update' ? { ...data, n: Number(data.n ?? 0) + 1 } : data,
    });
    const reasons: ResyncReason[] = [];
    await expect.poll(() => handle.status, POLL).toBe('live');
    handle.on('resync', (reason) => reasons.push(reason));
    await hub.publish([delta(1, 1, {}), delta(1, 1, {}), delta(1, 2, {})]);
    await expect.poll(() => handle.version, POLL).toBe(2);
    expect(handle.data).toEqual({ n: 2 });
    expect(reasons).toEqual([]);
  });

  it("by default, a delta of the handle's kind with another id is not the handle's", async () => {
    const { hub, store, ws } = await deltaHub();
    const one = open(ws, 'te', 1, {
      subscriptions: [{ topic: 'delta', filter: { resource_type: 'te' } }],
      reduce,
    });
    const two = open(ws, 'te', 2, {
      subscriptions: [{ topic: 'delta', filter: { resource_type: 'te' } }],
      reduce,
    });
    await expect.poll(() => [one.status, two.status], POLL).toEqual(['live', 'live']);
    await hub.publish([delta(1, 1, { status: 'running' }), delta(2, 1, { status: 'failed', other: true })]);
    await expect.poll(() => [one.version, two.version], POLL).toEqual([1, 1]);
    expect(one.data).toEqual(store.get('1')?.data);
    expect(two.data).toEqual(store.get('2')?.data);
    expect(one.data).toEqual({ status: 'running' });
  });
});
