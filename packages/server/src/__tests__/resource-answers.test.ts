import type { StreamPosition } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import {
  type Broker,
  BrokerUnavailableError,
  type Logger,
  MemoryBroker,
  type ResourceProvider,
  type ResourceState,
  type StreamBatch,
} from '../index.js';
import { RawSseTestClient, type RawTestClient } from '@atp/test-utils';
import { connect, progress, startApp } from './express-helpers.js';
import { disposer, startFallbackHub } from './helpers.js';

/** A logger that keeps what the hub logs, by level. */
function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

/** The reply with `id`, or how the connection closed before it came. */
function replyOrClose(
  client: RawTestClient,
  id: string,
): Promise<{ type: string; code?: unknown; closed?: number }> {
  return Promise.race([
    client.waitFor((m) => m.id === id).then((m) => ({ type: m.type, code: m.payload.code })),
    client.closed.then(({ code }) => ({ type: 'closed', closed: code })),
  ]);
}

function circular(): unknown {
  const node: { name: string; self?: unknown } = { name: 'loop' };
  node.self = node;
  return node;
}

/**
 * Answers that do not fit the `resource` payload, by kind. `epoch()` is the hub's current epoch,
 * so that the position itself is not what is wrong where only another field is.
 */
function invalidProviders(epoch: () => string): Record<string, ResourceProvider> {
  const at = (offset: number): StreamPosition => ({ epoch: epoch(), offset });
  return {
    'no-data': () => ({}) as never,
    'undefined-data': () => ({ data: undefined }),
    'bigint-data': () => ({ data: { total: 10n } }),
    'circular-data': () => ({ data: circular() }),
    'function-data': () => ({ data: () => 1 }),
    'null-answer': () => null as never,
    'number-answer': () => 42 as never,
    'negative-version': () => ({ data: 1, version: -1 }),
    'string-version': () => ({ data: 1, version: '3' as never }),
    'numeric-epoch': () => ({ data: 1, position: { epoch: 5, offset: 0 } as never }),
    'empty-epoch': () => ({ data: 1, position: { epoch: '', offset: 0 } }),
    'negative-offset': () => ({ data: 1, position: at(-1) }),
    'fractional-offset': () => ({ data: 1, position: at(0.5) }),
    'string-offset': async () => ({ data: 1, position: { epoch: epoch(), offset: '0' as never } }),
    'null-position': async () => ({ data: 1, position: null as never }),
    'throwing-getter': () =>
      ({
        get data() {
          throw new Error('lazy load failed');
        },
      }) as never,
  };
}

/** A hub with every invalid provider registered (and a `good` one), a connected client, and the hub's log. */
async function startWithInvalidProviders() {
  const { logger, lines } = recordingLogger();
  const app = await startApp({}, { logger });
  let epoch = '';
  const providers = invalidProviders(() => epoch);
  for (const [kind, provider] of Object.entries(providers)) app.hub.resources.register(kind, provider);
  app.hub.resources.register('good', (id) => ({ data: { id } }));
  const client = await connect(app.wsUrl);
  epoch = ((await client.request('ping', {})).payload as StreamPosition).epoch;
  return { app, lines, client, providers };
}

describe('invalid provider answers', () => {
  it('are answered resource_unavailable over the WebSocket, logged, and leave the connection and other clients healthy', async () => {
    const { app, lines, client, providers } = await startWithInvalidProviders();
    const other = await connect(app.wsUrl);
    for (const kind of Object.keys(providers)) {
      const id = `ask-${kind}`;
      client.send({ type: 'get_resource', id, payload: { kind, resource_id: '1' } });
      const reply = await client.waitFor((m) => m.id === id, { what: `the answer for ${kind}` });
      expect({ kind, type: reply.type, code: reply.payload.code }).toEqual({
        kind,
        type: 'error',
        code: 'resource_unavailable',
      });
      expect(
        lines.some((line) => line.level === 'error' && (line.obj as { kind?: string }).kind === kind),
      ).toBe(true);
      // The other client is served meanwhile.
      const theirs = await other.request('get_resource', { kind: 'good', resource_id: kind });
      expect(theirs).toMatchObject({ type: 'resource', payload: { data: { id: kind } } });
    }
    expect(client.isOpen).toBe(true);
    expect((await client.request('ping', {})).type).toBe('pong');
    const mine = await client.request('get_resource', { kind: 'good', resource_id: 'after' });
    expect(mine).toMatchObject({ type: 'resource', payload: { kind: 'good', data: { id: 'after' } } });
    await app.hub.publish(progress(1, 1, 10));
    await client.request('subscribe', { topic: 'test:progress' });
    await app.hub.publish(progress(1, 1, 20));
    expect((await client.waitForData(1))[0]).toMatchObject({ payload: { progress_percent: 20 } });
  });

  it('are answered 503 with a JSON body over HTTP, never an HTML error page', async () => {
    const { app, lines, providers } = await startWithInvalidProviders();
    for (const kind of Object.keys(providers)) {
      const response = await fetch(`${app.base}/api/ws/resources/${kind}/1`);
      const text = await response.text();
      expect({ kind, status: response.status, type: response.headers.get('content-type') }).toEqual({
        kind,
        status: 503,
        type: expect.stringContaining('application/json'),
      });
      expect(JSON.parse(text)).toMatchObject({ error: 'resource_unavailable', message: expect.any(String) });
      expect(
        lines.some((line) => line.level === 'error' && (line.obj as { kind?: string }).kind === kind),
      ).toBe(true);
    }
    const good = await fetch(`${app.base}/api/ws/resources/good/1`);
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ kind: 'good', resource_id: '1', data: { id: '1' } });
  });

  it('over HTTP, a kind or id that is not valid percent-encoding gets a JSON 400, not an HTML page', async () => {
    const app = await startApp();
    app.hub.resources.register('real', (id) => ({ data: { id } }));
    for (const path of ['real/%E0%A4%A', 'real/%', '%zz/1']) {
      const response = await fetch(`${app.base}/api/ws/resources/${path}`);
      expect({ path, status: response.status, type: response.headers.get('content-type') }).toEqual({
        path,
        status: 400,
        type: expect.stringContaining('application/json'),
      });
      expect(await response.json()).toMatchObject({ error: 'invalid_message' });
    }
    expect((await fetch(`${app.base}/api/ws/resources/real/1`)).status).toBe(200);
  });

  it('over HTTP, a provider that throws or rejects with something other than an Error, or times out, gets a JSON 503', async () => {
    const app = await startApp();
    app.hub.resources.register('throws-string', () => {
      throw 'database down';
    });
    app.hub.resources.register('throws-undefined', () => {
      throw undefined;
    });
    app.hub.resources.register('rejects-null', () => Promise.reject(null));
    app.hub.resources.register('rejects-object', () => Promise.reject({ code: 'ECONNRESET' }));
    app.hub.resources.register('times-out', {
      snapshot: () => new Promise<undefined>(() => {}),
      timeoutMs: 50,
    });
    app.hub.resources.register('check-throws', {
      snapshot: (id) => ({ data: id }),
      authorize: () => {
        throw 'no';
      },
    });
    for (const kind of [
      'throws-string',
      'throws-undefined',
      'rejects-null',
      'rejects-object',
      'times-out',
      'check-throws',
    ]) {
      const response = await fetch(`${app.base}/api/ws/resources/${kind}/1`);
      expect({ kind, status: response.status, type: response.headers.get('content-type') }).toEqual({
        kind,
        status: 503,
        type: expect.stringContaining('application/json'),
      });
      expect(await response.json()).toMatchObject({ error: 'resource_unavailable' });
    }
  });
});

describe('provider positions the stream has not reached', () => {
  it('are answered resource_unavailable; a position at the head or before it is answered as is', async () => {
    const { logger, lines } = recordingLogger();
    const app = await startApp({}, { logger });
    await app.hub.publish([progress(1, 1, 10), progress(1, 2, 10), progress(1, 3, 10)]);
    const client = await connect(app.wsUrl);
    const { epoch, offset: head } = (await client.request('ping', {})).payload as StreamPosition;
    expect(head).toBe(3);
    let answer: StreamPosition = { epoch, offset: head + 5 };
    app.hub.resources.register('remote', async (id) => ({ data: { id }, position: answer }));
    app.hub.resources.register('sync-remote', (id) => ({ data: { id }, position: answer }));
    const ask = async (kind: string) =>
      (await client.request('get_resource', { kind, resource_id: 'x' })) as {
        type: string;
        payload: Record<string, unknown>;
      };
    const http = async (kind: string) => {
      const response = await fetch(`${app.base}/api/ws/resources/${kind}/x`);
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    for (const kind of ['remote', 'sync-remote']) {
      expect(await ask(kind)).toMatchObject({ type: 'error', payload: { code: 'resource_unavailable' } });
      expect(await http(kind)).toMatchObject({ status: 503, body: { error: 'resource_unavailable' } });
    }
    expect(lines.filter((line) => line.level === 'error').length).toBeGreaterThanOrEqual(4);
    // An epoch the stream is not in is no position of it either.
    answer = { epoch: 'elsewhere', offset: 1 };
    expect(await ask('remote')).toMatchObject({ type: 'error', payload: { code: 'resource_unavailable' } });
    expect(await http('remote')).toMatchObject({ status: 503 });
    // Ahead of what this process delivered but published already: the stream has reached it.
    answer = { epoch, offset: head };
    expect(await ask('remote')).toMatchObject({ type: 'resource', payload: { epoch, offset: head } });
    answer = { epoch, offset: 1 };
    expect(await http('remote')).toMatchObject({
      status: 200,
      body: { epoch, offset: 1, data: { id: 'x' } },
    });
    // Once the stream reaches the offset, the same answer goes through.
    answer = { epoch, offset: head + 1 };
    expect(await ask('remote')).toMatchObject({ type: 'error' });
    await app.hub.publish(progress(1, 4, 10));
    expect(await ask('remote')).toMatchObject({ type: 'resource', payload: { offset: head + 1 } });
  });
});

/**
 * A broker whose deliveries to this process are held until released (a process reading a shared
 * stream late), and whose `position()` can fail.
 */
class LaggingBroker implements Broker {
  readonly inner = new MemoryBroker();
  holding = false;
  reachable = true;
  readonly #held: Array<() => void> = [];

  publish(messages: Parameters<Broker['publish']>[0]): Promise<void> {
    return this.inner.publish(messages);
  }

  subscribe(listener: (batch: StreamBatch) => void): ReturnType<Broker['subscribe']> {
    return this.inner.subscribe((batch) => {
      if (this.holding && batch.entries.length > 0) this.#held.push(() => listener(batch));
      else listener(batch);
    });
  }

  read(...args: Parameters<Broker['read']>): ReturnType<Broker['read']> {
    return this.inner.read(...args);
  }

  position(): ReturnType<Broker['position']> {
    if (!this.reachable) return Promise.reject(new BrokerUnavailableError('broker is unreachable'));
    return this.inner.position();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  release(): void {
    this.holding = false;
    for (const deliver of this.#held.splice(0)) deliver();
  }
}

describe('provider positions ahead of what this process delivered', () => {
  it('are checked against the broker: accepted up to its newest offset, unavailable when it cannot answer', async () => {
    const broker = new LaggingBroker();
    const app = await startApp({}, { broker });
    const client = await connect(app.wsUrl);
    broker.holding = true;
    await app.hub.publish([progress(1, 1, 10), progress(1, 2, 10), progress(1, 3, 10)]);
    const { epoch, offset: delivered } = (await client.request('ping', {})).payload as StreamPosition;
    expect(delivered).toBe(0);
    let answer: StreamPosition = { epoch, offset: 3 };
    app.hub.resources.register('remote', async (id) => ({ data: { id }, position: answer }));
    const ask = () => client.request('get_resource', { kind: 'remote', resource_id: 'x' });
    // Published (the stream has it), not delivered here yet: a valid position.
    expect(await ask()).toMatchObject({ type: 'resource', payload: { epoch, offset: 3 } });
    answer = { epoch, offset: 4 };
    expect(await ask()).toMatchObject({ type: 'error', payload: { code: 'resource_unavailable' } });
    answer = { epoch, offset: 2 };
    broker.reachable = false;
    expect(await ask()).toMatchObject({ type: 'error', payload: { code: 'resource_unavailable' } });
    const http = await fetch(`${app.base}/api/ws/resources/remote/x`);
    expect(http.status).toBe(503);
    expect(await http.json()).toMatchObject({ error: 'resource_unavailable' });
    // Once delivered here, no question to the broker is needed.
    broker.release();
    await expect
      .poll(async () => ((await client.request('ping', {})).payload as StreamPosition).offset)
      .toBe(3);
    expect(await ask()).toMatchObject({ type: 'resource', payload: { epoch, offset: 2 } });
  });
});

describe('large answers and the outbound buffer', () => {
  const limits = { softBufferedBytes: 16 * 1024, maxBufferedBytes: 64 * 1024 };

  it('an answer larger than maxBufferedBytes is answered resource_unavailable and the connection stays open', async () => {
    const { logger, lines } = recordingLogger();
    const app = await startApp({}, { ...limits, logger });
    app.hub.resources.register('blob', (id) => ({ data: 'x'.repeat(Number(id)) }));
    const client = await connect(app.wsUrl);
    const reply = await client.request('get_resource', { kind: 'blob', resource_id: String(100 * 1024) });
    expect({ type: reply.type, code: reply.payload.code }).toEqual({
      type: 'error',
      code: 'resource_unavailable',
    });
    expect(String(reply.payload.message)).toMatch(/bytes/);
    expect(lines.some((line) => (line.obj as { kind?: string }).kind === 'blob')).toBe(true);
    expect(client.isOpen).toBe(true);
    expect((await client.request('ping', {})).type).toBe('pong');
    const small = await client.request('get_resource', { kind: 'blob', resource_id: '100' });
    expect(small).toMatchObject({ type: 'resource', payload: { data: 'x'.repeat(100) } });
    // Over HTTP there is no connection buffer to protect: the same answer is served.
    const http = await fetch(`${app.base}/api/ws/resources/blob/${100 * 1024}`);
    expect(http.status).toBe(200);
  });

  it('an oversized answer on a busy connection does not get it closed with 1013 (no close, reconnect, refetch loop)', async () => {
    const app = await startApp({}, limits);
    app.hub.resources.register('blob', (id) => ({ data: 'x'.repeat(Number(id)) }));
    const client = await connect(app.wsUrl);
    const size = String(48 * 1024);
    // Asked at once: the first is written, the others wait in the outbound queue.
    for (let i = 0; i < 3; i++) {
      client.send({ type: 'get_resource', id: `big-${i}`, payload: { kind: 'blob', resource_id: size } });
    }
    const replies = await Promise.all([0, 1, 2].map((i) => replyOrClose(client, `big-${i}`)));
    expect(replies.filter((m) => m.type === 'resource').length).toBeGreaterThanOrEqual(1);
    for (const reply of replies.filter((m) => m.type !== 'resource')) {
      expect(reply).toEqual({ type: 'error', code: 'resource_unavailable' });
    }
    expect(client.isOpen).toBe(true);
    expect((await client.request('ping', {})).type).toBe('pong');
  });

  it('several moderate answers at once: those within the in-flight budget are sent, the rest answered resource_unavailable, no 1013', async () => {
    const app = await startApp({}, limits);
    const waiting: Array<() => void> = [];
    // Each answer is held until all are asked for, then all are released in the same turn.
    app.hub.resources.register('held', (id, context) => {
      const position = context.position;
      return new Promise<ResourceState>((resolve) => {
        waiting.push(() => resolve({ data: { id, blob: 'y'.repeat(20 * 1024) }, position }));
      });
    });
    app.hub.resources.register('blob', (id) => ({ data: 'x'.repeat(Number(id)) }));
    const client = await connect(app.wsUrl);
    const ids = Array.from({ length: 6 }, (_, i) => `moderate-${i}`);
    for (const id of ids)
      client.send({ type: 'get_resource', id, payload: { kind: 'held', resource_id: id } });
    await expect.poll(() => waiting.length).toBe(ids.length);
    for (const release of waiting) release();
    const replies = await Promise.all(ids.map((id) => replyOrClose(client, id)));
    // 3 × ~20 KiB fit in 64 KiB; a fourth would not.
    expect(replies.map((m) => m.type)).toEqual([
      'resource',
      'resource',
      'resource',
      'error',
      'error',
      'error',
    ]);
    for (const reply of replies.slice(3)) expect(reply.code).toBe('resource_unavailable');
    const refused = client.messages.find((m) => m.id === 'moderate-5');
    expect(refused?.payload.message).toMatch(/bytes/);
    expect(client.messages.find((m) => m.id === 'moderate-0')?.payload).toMatchObject({
      kind: 'held',
      resource_id: 'moderate-0',
    });
    expect(client.isOpen).toBe(true);
    // Once written, the answers no longer count: the budget is free again.
    for (let i = 0; i < 4; i++) {
      const reply = await client.request('get_resource', { kind: 'blob', resource_id: String(40 * 1024) });
      expect(reply.type).toBe('resource');
    }
    expect((await client.request('ping', {})).type).toBe('pong');
    await app.hub.publish(progress(1, 1, 10));
    expect(client.isOpen).toBe(true);
  });

  it('answers in flight do not count toward the slow-consumer limit of data messages', async () => {
    const app = await startApp({}, limits);
    const waiting: Array<() => void> = [];
    app.hub.resources.register('held', (id, context) => {
      const position = context.position;
      return new Promise<ResourceState>((resolve) => {
        waiting.push(() => resolve({ data: { id, blob: 'y'.repeat(30 * 1024) }, position }));
      });
    });
    const client = await connect(app.wsUrl);
    await client.request('subscribe', { topic: 'test:progress' });
    for (const id of ['a', 'b'])
      client.send({ type: 'get_resource', id, payload: { kind: 'held', resource_id: id } });
    await expect.poll(() => waiting.length).toBe(2);
    for (const release of waiting) release();
    // In the same turn as the answers: ~20 KiB of data messages queue behind ~60 KiB of answers.
    const messages = Array.from({ length: 40 }, (_, i) => {
      const message = progress(1, i + 1, 10);
      (message.payload as { message?: string }).message = 'z'.repeat(500);
      return message;
    });
    await app.hub.publish(messages);
    const replies = await Promise.all(['a', 'b'].map((id) => replyOrClose(client, id)));
    expect(replies.map((m) => m.type)).toEqual(['resource', 'resource']);
    expect(await client.waitForData(40)).toHaveLength(40);
    expect(client.isOpen).toBe(true);
    expect(await Promise.race([client.closed, new Promise((r) => setTimeout(() => r('open'), 50))])).toBe(
      'open',
    );
  });

  it('over the SSE fallback too: an oversized answer is refused, and sent answers free the budget', async () => {
    const { hub, url } = await startFallbackHub(limits);
    hub.resources.register('blob', (id) => ({ data: 'x'.repeat(Number(id)) }));
    const client = await RawSseTestClient.connect(url);
    disposer.add(() => client.close());
    const big = await client.request('get_resource', { kind: 'blob', resource_id: String(100 * 1024) });
    expect({ type: big.type, code: big.payload.code }).toEqual({
      type: 'error',
      code: 'resource_unavailable',
    });
    for (let i = 0; i < 4; i++) {
      const reply = await client.request('get_resource', { kind: 'blob', resource_id: String(40 * 1024) });
      expect(reply.type).toBe('resource');
    }
    expect((await client.request('ping', {})).type).toBe('pong');
  });
});
