// Live resources when the application's code throws, the server refuses what the resource needs,
// a session starts over or fetches pile up (found by attacking the resource handle).
import { completed, type Run, runOptions, serveRuns } from '@atp/test-utils';
import type { DeliveredDataMessage } from '@atp/ws-protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ATPWebSocketError,
  openResource,
  type ResourceHandle,
  type ResourceOptions,
  type ResourceStatus,
  type ResyncReason,
} from '../index.js';
import { disposer, newClient, startHub } from './helpers.js';

const POLL = { timeout: 8_000, interval: 10 };

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function open<T = Run>(
  ws: ReturnType<typeof newClient>,
  kind: string,
  id: number,
  options: ResourceOptions<T>,
): ResourceHandle<T> {
  const handle = openResource(ws, kind, id, options);
  disposer.add(() => handle.close());
  return handle;
}

function watch<T>(handle: ResourceHandle<T>) {
  const reasons: ResyncReason[] = [];
  const statuses: ResourceStatus[] = [];
  const errors: ATPWebSocketError[] = [];
  handle.on('resync', (reason) => reasons.push(reason));
  handle.on('change', ({ status }) => statuses.push(status));
  handle.on('error', (error) => errors.push(error));
  return { reasons, statuses, errors };
}

/** Waits in real time (the fake timers are not advanced, unlike `expect.poll`) until `condition` holds. */
async function realUntil(condition: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 5_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const idOf = (message: DeliveredDataMessage) =>
  message.type === 'test_completed' ? message.payload.test_execution_id : undefined;

/**
 * `run` served by serveRuns as kind `counted`, with a count of the snapshots the hub was asked for;
 * with `delayMs`, each answer takes that long (read at once, so at the position it reflects).
 */
function countedRuns(hub: Awaited<ReturnType<typeof startHub>>['hub'], delayMs = 0) {
  const runs = serveRuns(hub);
  const calls = { n: 0 };
  hub.resources.register('counted', (id, { position }) => {
    calls.n += 1;
    const data = structuredClone(runs.get(Number(id)) ?? { completed: [], progress: {} });
    if (delayMs === 0) return { data };
    return new Promise<{ data: Run; position: typeof position }>((resolve) =>
      setTimeout(() => resolve({ data, position }), delayMs),
    );
  });
  return { runs, calls };
}

describe('live resources: a new session, faults of the application, refusals, superseded fetches', () => {
  it('connect() after disconnect() (a new session, nothing resumed) refetches the resource', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 'run', 1, runOptions(1));
    const seen = watch(handle);
    await hub.publish(completed(1, 1));
    await expect.poll(() => handle.data?.completed, POLL).toEqual([1]);
    ws.disconnect();
    await hub.publish([completed(1, 2), completed(1, 3)]);
    await ws.connect();
    await hub.publish(completed(1, 4));
    await expect.poll(() => handle.data?.completed, POLL).toEqual([1, 2, 3, 4]);
    expect(runs.get(1)?.completed).toEqual([1, 2, 3, 4]);
    expect(handle.status).toBe('live');
    expect(seen.reasons).toContain('new_session');
  });

  it('fromSnapshot throwing: status error (snapshot_failed), retried with backoff, then live', async () => {
    const { hub, url } = await startHub();
    const { runs, calls } = countedRuns(hub);
    await hub.publish(completed(1, 1));
    const ws = newClient(url);
    await ws.connect();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let failures = 2;
    const handle = open(ws, 'counted', 1, {
      ...runOptions(1),
      fromSnapshot: (data) => {
        if (failures > 0) {
          failures -= 1;
          throw new Error('bad snapshot');
        }
        return data as Run;
      },
    });
    const seen = watch(handle);
    await realUntil(() => handle.status === 'error', 'error');
    expect(handle.error?.code).toBe('snapshot_failed');
    expect(seen.errors.map((e) => e.code)).toEqual(['snapshot_failed']);
    expect(calls.n).toBe(1);
    // Backoff: 500 ms, then 1000 ms; nothing is fetched before.
    await vi.advanceTimersByTimeAsync(490);
    expect(calls.n).toBe(1);
    expect(handle.status).toBe('error');
    await vi.advanceTimersByTimeAsync(10);
    await realUntil(() => calls.n === 2 && handle.status === 'error', 'the second failure');
    await vi.advanceTimersByTimeAsync(990);
    expect(calls.n).toBe(2);
    await vi.advanceTimersByTimeAsync(10);
    await realUntil(() => handle.status === 'live', 'live');
    expect(calls.n).toBe(3);
    expect(handle.data).toEqual(runs.get(1));
    expect(handle.error).toBeUndefined();
    expect(seen.errors).toHaveLength(2);
  });

  it('a reducer throwing on a message refetches: nothing skipped, nothing applied twice', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    const base = runOptions(1);
    let thrown = false;
    const handle = open(ws, 'run', 1, {
      ...base,
      reduce: (run, message) => {
        if (idOf(message) === 5 && !thrown) {
          thrown = true;
          run.completed.push(-1); // a half-done change the refetch must not keep
          throw new Error('reducer bug');
        }
        return base.reduce(run, message);
      },
    });
    const seen = watch(handle);
    await expect.poll(() => handle.status, POLL).toBe('live');
    for (let test = 1; test <= 10; test++) await hub.publish(completed(1, test));
    await expect.poll(() => handle.data?.completed, POLL).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(handle.data).toEqual(runs.get(1));
    expect(handle.status).toBe('live');
    expect(thrown).toBe(true);
    expect(seen.reasons).toContain('reducer_failed');
    expect(seen.errors.map((e) => e.code)).toEqual(['reducer_failed']);
    expect(seen.statuses).toContain('resyncing');
  });

  it('matches throwing refetches instead of skipping the message', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    let thrown = false;
    const handle = open(ws, 'run', 1, {
      ...runOptions(1),
      matches: (message) => {
        if (idOf(message) === 3 && !thrown) {
          thrown = true;
          throw new Error('matches bug');
        }
        return message.type === 'test_completed' && message.payload.suite_execution_id === 1;
      },
    });
    const seen = watch(handle);
    await expect.poll(() => handle.status, POLL).toBe('live');
    for (let test = 1; test <= 6; test++) await hub.publish(completed(1, test));
    await expect.poll(() => handle.data?.completed, POLL).toEqual([1, 2, 3, 4, 5, 6]);
    expect(handle.data).toEqual(runs.get(1));
    expect(thrown).toBe(true);
    expect(seen.reasons).toContain('matches_failed');
    expect(seen.errors.map((e) => e.code)).toEqual(['reducer_failed']);
  });

  it('a throwing change or resync listener does not stop the others nor the handle', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 'run', 1, runOptions(1));
    await expect.poll(() => handle.status, POLL).toBe('live');
    handle.on('change', () => {
      throw new Error('change listener bug');
    });
    handle.on('resync', () => {
      throw new Error('resync listener bug');
    });
    const after = watch(handle);
    expect(() => handle.refetch()).not.toThrow();
    await hub.publish(completed(1, 7));
    await expect.poll(() => handle.data?.completed, POLL).toEqual([7]);
    expect(handle.data).toEqual(runs.get(1));
    expect(handle.status).toBe('live');
    expect(after.reasons).toEqual(['refetch']);
    expect(after.statuses).toContain('resyncing');
    expect(after.statuses.at(-1)).toBe('live');
    expect(after.errors.length).toBeGreaterThanOrEqual(2);
    expect(new Set(after.errors.map((e) => e.code))).toEqual(new Set(['listener_failed']));
  });

  it('a throwing listener with nobody listening to error is reported on the console', async () => {
    const { hub, url } = await startHub();
    serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    const logged = vi.spyOn(globalThis.console, 'error').mockImplementation(() => {});
    const handle = open(ws, 'run', 1, runOptions(1));
    const good: ResourceStatus[] = [];
    handle.on('change', () => {
      throw new Error('change listener bug');
    });
    handle.on('change', ({ status }) => good.push(status));
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(good).toEqual(['live']);
    expect(logged).toHaveBeenCalled();
    expect((logged.mock.calls[0]?.[0] as ATPWebSocketError | undefined)?.code).toBe('listener_failed');
  });

  it('a subscription refused when a new session starts (forbidden) makes the handle error, not live', async () => {
    let allow = true;
    const { hub, url } = await startHub({ authorizeSubscription: () => allow });
    serveRuns(hub);
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 'run', 1, runOptions(1));
    await expect.poll(() => handle.status, POLL).toBe('live');
    ws.disconnect();
    allow = false;
    await ws.connect();
    await expect.poll(() => handle.status, POLL).toBe('error');
    expect(handle.error?.serverCode).toBe('forbidden');
    // It stays so: nothing arrives for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(handle.status).toBe('error');
  });

  it('a subscription refused at open (unknown_topic, too_many_subscriptions) is an error that stays', async () => {
    const { hub, url } = await startHub({ maxSubscriptions: 2 });
    serveRuns(hub);
    const crowded = newClient(url);
    await crowded.connect();
    await Promise.all([crowded.subscribe('logs').ready, crowded.subscribe('suite:progress').ready]);
    const full = open(crowded, 'run', 1, { ...runOptions(1), retryDelay: () => 20 });
    const ws = newClient(url);
    await ws.connect();
    const unknown = open(ws, 'run', 2, {
      ...runOptions(2),
      subscriptions: [{ topic: 'no:such:topic' }],
      retryDelay: () => 20,
    });
    await expect.poll(() => [full.status, unknown.status], POLL).toEqual(['error', 'error']);
    const seen = [watch(full), watch(unknown)];
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect([full.status, unknown.status]).toEqual(['error', 'error']);
    expect(full.error?.serverCode).toBe('too_many_subscriptions');
    expect(unknown.error?.serverCode).toBe('unknown_topic');
    expect(seen.map((s) => s.statuses)).toEqual([[], []]);
  });

  it('refetches asked for while one is in flight send one more request, not one each', async () => {
    const { hub, url } = await startHub();
    const { runs, calls } = countedRuns(hub, 40);
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 'counted', 1, runOptions(1));
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(calls.n).toBe(1);
    for (let i = 0; i < 5; i++) handle.refetch();
    await expect.poll(() => handle.status, POLL).toBe('live');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls.n).toBe(2);
    // One in flight (sent, answered 40 ms later), then five more: one more is sent after it.
    handle.refetch();
    await expect.poll(() => calls.n, POLL).toBe(3);
    await hub.publish(completed(1, 9));
    for (let i = 0; i < 5; i++) handle.refetch();
    await expect.poll(() => handle.status, POLL).toBe('live');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls.n).toBe(4);
    expect(handle.data).toEqual(runs.get(1));
    expect(handle.data?.completed).toEqual([9]);
  });

  it('an answer without data is an error retried with backoff, never the state', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    let empty = 1;
    hub.resources.register('sometimes_empty', (id) => {
      if (empty > 0) {
        empty -= 1;
        return { data: undefined };
      }
      return { data: structuredClone(runs.get(Number(id)) ?? { completed: [], progress: {} }) };
    });
    await hub.publish(completed(1, 1));
    const ws = newClient(url);
    await ws.connect();
    const handle = open(ws, 'sometimes_empty', 1, { ...runOptions(1), retryDelay: () => 50 });
    const seen = watch(handle);
    await expect.poll(() => handle.status, POLL).toBe('live');
    expect(handle.data).toEqual(runs.get(1));
    expect(seen.statuses).toContain('error');
    expect(seen.statuses.slice(0, seen.statuses.indexOf('error'))).not.toContain('live');
  });
});
