import type { DataMessage, StreamPosition } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '../index.js';
import { connect, progress, startApp } from './express-helpers.js';
import { startHub } from './helpers.js';

/** A per-suite count of the `test_progress` messages, kept from the hub's delivered stream. */
function followProgress(app: Awaited<ReturnType<typeof startApp>>) {
  const counts = new Map<number, number>();
  app.hub.resources.follow((messages: readonly DataMessage[]) => {
    for (const message of messages) {
      if (message.type !== 'test_progress') continue;
      const suite = message.payload.suite_execution_id;
      counts.set(suite, (counts.get(suite) ?? 0) + 1);
    }
  });
  app.hub.resources.register('suite_execution', (id) => {
    const count = counts.get(Number(id));
    return count === undefined ? undefined : { data: { messages: count }, version: count };
  });
  return counts;
}

describe('live resources over the WebSocket', () => {
  it('answers get_resource with the state and the position it reflects, consistent under publishing', async () => {
    const app = await startApp();
    followProgress(app);
    const client = await connect(app.wsUrl);
    await client.request('subscribe', { topic: 'test:progress', filter: { suite_execution_id: 1 } });
    // Publishing runs while snapshots are asked for: each snapshot must count exactly the messages up to its offset.
    const publishing = (async () => {
      for (let i = 0; i < 40; i++) await app.hub.publish(progress(1, i, 50));
    })();
    const snapshots: Array<{ data: { messages: number }; offset: number }> = [];
    while (snapshots.length < 30) {
      const reply = await client.request('get_resource', { kind: 'suite_execution', resource_id: '1' });
      if (reply.type === 'resource') snapshots.push(reply.payload as never);
      else expect(reply.payload).toMatchObject({ code: 'resource_not_found' });
    }
    await publishing;
    const data = await client.waitForData(40);
    for (const snapshot of snapshots) {
      const before = data.filter((m) => (m.offset as number) <= snapshot.offset).length;
      expect(snapshot.data.messages).toBe(before);
    }
  });

  it('refuses an unknown kind, an unknown id, a bad id and a failing provider, and keeps the connection', async () => {
    const app = await startApp();
    followProgress(app);
    app.hub.resources.register('broken', () => {
      throw new Error('database down');
    });
    app.hub.resources.register('slow', async () => ({ data: 1 }));
    const client = await connect(app.wsUrl);
    const ask = async (kind: unknown, resource_id: unknown) =>
      (await client.request('get_resource', { kind, resource_id })).payload as {
        code: string;
        message: string;
      };
    expect(await ask('nope', '1')).toMatchObject({ code: 'unknown_resource' });
    expect((await ask('nope', '1')).message).toContain('suite_execution');
    expect(await ask('suite_execution', '999')).toMatchObject({ code: 'resource_not_found' });
    expect(await ask('broken', '1')).toMatchObject({ code: 'resource_unavailable' });
    expect(await ask('slow', '1')).toMatchObject({ code: 'resource_unavailable' });
    expect(await ask('suite_execution', 7)).toMatchObject({ code: 'invalid_message' });
    expect(await ask('bad kind!', '1')).toMatchObject({ code: 'invalid_message' });
    await app.hub.publish(progress(3, 1, 10));
    const reply = await client.request('get_resource', { kind: 'suite_execution', resource_id: '3' });
    expect(reply).toMatchObject({ type: 'resource', payload: { data: { messages: 1 }, version: 1 } });
  });

  it('answers an async provider that returns its own position with that position', async () => {
    const app = await startApp();
    await app.hub.publish([progress(1, 1, 10), progress(1, 2, 10), progress(1, 3, 10)]);
    const client = await connect(app.wsUrl);
    const { epoch } = (await client.request('ping', {})).payload as StreamPosition;
    // A position of the stream other than the one this process delivered up to (3).
    const at: StreamPosition = { epoch, offset: 2 };
    app.hub.resources.register('remote', async (id) => ({ data: { id }, position: at }));
    const reply = await client.request('get_resource', { kind: 'remote', resource_id: 'x' });
    expect(reply.payload).toEqual({ kind: 'remote', resource_id: 'x', data: { id: 'x' }, ...at });
  });

  it('asks the authorize hook with the connection principal', async () => {
    const app = await startApp(
      {},
      {
        authenticate: (request) => ({
          id: new URL(request.url ?? '', 'http://x').searchParams.get('u') ?? '',
        }),
      },
    );
    app.hub.resources.register('mine', {
      snapshot: (id) => ({ data: id }),
      authorize: (principal, id) => principal?.id === id,
    });
    const alice = await connect(app.wsUrl, 'u=alice');
    expect((await alice.request('get_resource', { kind: 'mine', resource_id: 'alice' })).type).toBe(
      'resource',
    );
    expect((await alice.request('get_resource', { kind: 'mine', resource_id: 'bob' })).payload).toMatchObject(
      {
        code: 'forbidden',
      },
    );
  });
});

describe('registering providers and followers', () => {
  it('refuses a provider or a follower that is not a function, with a TypeError naming it', async () => {
    const app = await startApp();
    const { resources } = app.hub;
    expect(() => resources.register('run', 42 as never)).toThrow(/provider of 'run' must be a function/);
    expect(() => resources.register('run', {} as never)).toThrow(/snapshot/);
    expect(() => resources.register('run', { snapshot: () => 1, timeoutMs: -1 } as never)).toThrow(
      /timeoutMs/,
    );
    expect(() => resources.register('run', { snapshot: () => 1, authorize: 'yes' } as never)).toThrow(
      /authorize/,
    );
    expect(() => resources.follow(5 as never)).toThrow(TypeError);
    expect(() => resources.follow(() => {}, { from: 'end' } as never)).toThrow(/from\?: 'start'/);
    expect(resources.kinds()).toEqual([]);
  });

  it("a follower from 'start' gets the kept history, then every live batch, each message once and in order", async () => {
    const { hub } = await startHub({ broker: new MemoryBroker() });
    const sent = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => progress(1, from + i, 50));
    for (let page = 0; page < 5; page++) await hub.publish(sent(page * 1000, 1000)); // more than a page
    const seen: number[] = [];
    const positions: StreamPosition[] = [];
    hub.resources.follow(
      (messages, position) => {
        for (const m of messages) if (m.type === 'test_progress') seen.push(m.payload.test_execution_id);
        positions.push(position);
      },
      { from: 'start' },
    );
    // Until the follower has read the history, a state kept by it is not at the hub's position.
    hub.resources.register('count', () => ({ data: seen.length }));
    await expect(hub.resources.snapshot('count', '1')).rejects.toMatchObject({
      code: 'resource_unavailable',
    });
    // Published while the history is read: held for the follower, given after it.
    const live = hub.publish(sent(5000, 10));
    await live;
    await hub.publish(sent(5010, 5));
    await expect.poll(() => seen.length).toBe(5015);
    expect(seen).toEqual(Array.from({ length: 5015 }, (_, i) => i));
    const offsets = positions.map((p) => p.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(offsets.at(-1)).toBe(5015);
    expect((await hub.resources.snapshot('count', '1')).data).toBe(5015);
    // Without the option, a follower gets what is delivered from now on only.
    const later: number[] = [];
    hub.resources.follow((messages) => later.push(messages.length));
    await hub.publish(sent(6000, 3));
    await expect.poll(() => seen.length).toBe(5018);
    expect(later).toEqual([3]);
  });
});

describe("following from 'start' through broker failures", () => {
  it('reads a page of history again when the broker fails it: the follower gets all of it, once', async () => {
    let failures = 0;
    /** A broker that fails two reads after the first page, as Redis does while unreachable. */
    class FlakyBroker extends MemoryBroker {
      override async read(...args: Parameters<MemoryBroker['read']>): ReturnType<MemoryBroker['read']> {
        if (args[0] !== 'start' && failures < 2) {
          failures += 1;
          throw new Error('connection reset');
        }
        return super.read(...args);
      }
    }
    const { hub } = await startHub({ broker: new FlakyBroker() });
    const count = 2500;
    await hub.publish(Array.from({ length: count }, (_, i) => progress(1, i, 50)));
    const seen: number[] = [];
    hub.resources.follow(
      (messages) => {
        for (const m of messages) if (m.type === 'test_progress') seen.push(m.payload.test_execution_id);
      },
      { from: 'start' },
    );
    hub.resources.register('count', () => ({ data: seen.length }));
    await expect.poll(() => seen.length, { timeout: 5000 }).toBe(count);
    expect(failures).toBe(2);
    expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
    expect((await hub.resources.snapshot('count', '1')).data).toBe(count);
  });
});

describe("a follower from 'start' whose history is trimmed as it reads", () => {
  it('is told in the log that it missed messages', async () => {
    /** A broker whose history loses its middle while a follower reads it. */
    class TrimmedBroker extends MemoryBroker {
      override async read(...args: Parameters<MemoryBroker['read']>): ReturnType<MemoryBroker['read']> {
        const read = await super.read(...args);
        if (args[0] === 'start') return read;
        return { ...read, complete: false, reason: 'history_truncated' as const };
      }
    }
    const errors: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error(fields: unknown) {
        errors.push(String((fields as { err?: Error }).err?.message));
      },
    };
    const { hub } = await startHub({ broker: new TrimmedBroker(), logger });
    await hub.publish(Array.from({ length: 1500 }, (_, i) => progress(1, i, 50)));
    let seen = 0;
    hub.resources.follow(
      (messages) => {
        seen += messages.length;
      },
      { from: 'start' },
    );
    await expect.poll(() => seen).toBe(1500);
    expect(errors.some((message) => /missed messages/.test(message))).toBe(true);
  });
});

describe('slow and hung snapshot providers', () => {
  it('a provider that never answers delays its own answer only: later requests of the connection are answered', async () => {
    const app = await startApp();
    followProgress(app);
    app.hub.resources.register('hangs', () => new Promise<undefined>(() => {}));
    await app.hub.publish(progress(2, 1, 50));
    const client = await connect(app.wsUrl);
    client.send({ type: 'get_resource', id: 'hung', payload: { kind: 'hangs', resource_id: '1' } });
    const subscribed = await client.request('subscribe', { topic: 'logs' });
    expect(subscribed.type).toBe('subscribed');
    const other = await client.request('get_resource', { kind: 'suite_execution', resource_id: '2' });
    expect(other).toMatchObject({ type: 'resource', payload: { data: { messages: 1 } } });
    expect(client.messages.some((m) => m.id === 'hung')).toBe(false);
  });

  it('answers resource_unavailable once a provider or its authorize hook takes longer than timeoutMs', async () => {
    const app = await startApp();
    app.hub.resources.register('slow', { snapshot: () => new Promise<undefined>(() => {}), timeoutMs: 100 });
    app.hub.resources.register('slow-check', {
      snapshot: (id) => ({ data: id }),
      authorize: () => new Promise<boolean>(() => {}),
      timeoutMs: 100,
    });
    const client = await connect(app.wsUrl);
    const started = Date.now();
    const reply = await client.request('get_resource', { kind: 'slow', resource_id: '1' });
    expect(reply.payload).toMatchObject({ code: 'resource_unavailable' });
    expect(Date.now() - started).toBeLessThan(5000);
    const checked = await client.request('get_resource', { kind: 'slow-check', resource_id: '1' });
    expect(checked.payload).toMatchObject({ code: 'resource_unavailable' });
    const http = await fetch(`${app.base}/api/ws/resources/slow/1`);
    expect(http.status).toBe(503);
  });
});

describe('live resources over HTTP', () => {
  it('GET /api/ws/resources/:kind/:id answers the snapshot or a clear error with its status', async () => {
    const app = await startApp();
    followProgress(app);
    app.hub.resources.register('broken', async () => {
      throw new Error('database down');
    });
    await app.hub.publish([progress(5, 1, 10), progress(5, 2, 20), progress(6, 1, 10)]);
    await expect
      .poll(async () => (await fetch(`${app.base}/api/ws/resources/suite_execution/5`)).status)
      .toBe(200);
    const response = await fetch(`${app.base}/api/ws/resources/suite_execution/5`);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { data: unknown; offset: number; epoch: string };
    expect(body).toMatchObject({ kind: 'suite_execution', resource_id: '5', data: { messages: 2 } });
    expect(body.offset).toBe(3);
    const status = async (path: string) => {
      const r = await fetch(`${app.base}/api/ws/resources/${path}`);
      return [r.status, ((await r.json()) as { error: string }).error];
    };
    expect(await status('nope/1')).toEqual([404, 'unknown_resource']);
    expect(await status('suite_execution/77')).toEqual([404, 'resource_not_found']);
    expect(await status('broken/1')).toEqual([503, 'resource_unavailable']);
    expect(await status(`suite_execution/${'9'.repeat(200)}`)).toEqual([400, 'invalid_message']);
    // The hub still serves after the failures.
    expect((await fetch(`${app.base}/api/ws/resources/suite_execution/6`)).status).toBe(200);
  });
});
