import { type DataMessage, GapReason, type ReplayFrom } from '@atp/ws-protocol';
import { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import {
  type ATPWebSocketServer,
  type Broker,
  type HistoryRead,
  MemoryBroker,
  type StreamBatch,
  type StreamEntry,
} from '../index.js';
import { connect, disposer, log, progress, startHub, testsAsCreated, toolCall } from './helpers.js';

type Position = { epoch: string; offset: number };

/** A memory broker that records how many entries each history read returned. */
class RecordingBroker extends MemoryBroker {
  readonly readSizes: number[] = [];
  override async read(from: ReplayFrom, options?: { limit?: number }): Promise<HistoryRead> {
    const result = await super.read(from, options);
    this.readSizes.push(result.entries.length);
    return result;
  }
}

/**
 * Publishes `batches` × `size` log messages of suite 2, then one of suite 1 ('the one'), and
 * subscribes a new client to suite 1's logs from the start.
 */
async function oneLogAfterNoise(hub: ATPWebSocketServer, url: string, batches: number, size: number) {
  for (let i = 0; i < batches; i++)
    await hub.publish(Array.from({ length: size }, (_, j) => log(2, 'info', `noise ${i}-${j}`)));
  await hub.publish(log(1, 'info', 'the one'));
  const client = await connect(url);
  const ack = await client.request('subscribe', {
    topic: 'logs',
    filter: { suite_execution_id: 1 },
    from: 'start',
  });
  return { client, ack };
}

describe('positions the hub cannot place', () => {
  it('answers a resume ahead of the stream with unknown_position and delivers live data at once', async () => {
    const { url, hub } = await startHub();
    await hub.publish([log(1, 'info', 'a'), log(1, 'info', 'b')]);
    const client = await connect(url);
    const { epoch, offset } = (client.messages[0] as unknown as { payload: Position }).payload;
    const resumed = await client.request('resume', {
      epoch,
      offset: offset + 5,
      sequence: 7,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({
      recovered: false,
      complete: false,
      reason: GapReason.UnknownPosition,
      next_sequence: 9,
      epoch,
      offset,
    });
    await hub.publish([log(1, 'info', 'c'), log(1, 'info', 'd')]);
    const data = await client.waitForData(2);
    expect(data.map((m) => [m.payload.message, m.sequence, m.offset])).toEqual([
      ['c', 9, offset + 1],
      ['d', 10, offset + 2],
    ]);
    const pong = await client.request('ping', {});
    expect(pong.payload).toEqual({ epoch, offset: offset + 2 });
  });

  it('answers a subscribe from a position ahead of the stream with unknown_position and goes live', async () => {
    const { url, hub } = await startHub();
    await hub.publish(log(1, 'info', 'a'));
    const client = await connect(url);
    const { epoch, offset } = (client.messages[0] as unknown as { payload: Position }).payload;
    const ack = await client.request('subscribe', { topic: 'logs', from: { epoch, offset: offset + 3 } });
    expect(ack.payload.history).toEqual({ replayed: 0, complete: false, reason: GapReason.UnknownPosition });
    await hub.publish(log(1, 'info', 'b'));
    expect((await client.waitForData(1)).map((m) => m.payload.message)).toEqual(['b']);
  });
});

describe('at most once per connection', () => {
  it('does not replay an offset twice when overlapping subscriptions both ask for history', async () => {
    const { url, hub } = await startHub();
    await hub.publish([toolCall(1), toolCall(1)]);
    const client = await connect(url);
    const all = await client.request('subscribe', {
      topic: 'events:*',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(all.payload.history).toMatchObject({ replayed: 2, complete: true });
    const narrow = await client.request('subscribe', {
      topic: 'events:tool_call',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(narrow.payload.history).toMatchObject({ replayed: 0, complete: true });
    const again = await client.request('subscribe', {
      topic: 'events:*',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(again.payload.history).toMatchObject({ replayed: 0, complete: true });
    await hub.publish(toolCall(1));
    await client.waitForData(3);
    await client.request('ping', {});
    expect(client.data().map((m) => [m.offset, m.sequence])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('replays for a re-subscription only what the subscription had not covered', async () => {
    const { url, hub } = await startHub();
    await hub.publish([log(1, 'info', 'old-1'), log(1, 'info', 'old-2')]);
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await hub.publish(log(1, 'info', 'live'));
    await client.waitForData(1);
    const again = await client.request('subscribe', {
      topic: 'logs',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(again.payload.history).toMatchObject({ replayed: 2, complete: true });
    await client.waitForData(3);
    await client.request('ping', {});
    expect(client.data().map((m) => m.payload.message)).toEqual(['live', 'old-1', 'old-2']);
  });

  it('answers from: "start" as complete, however much was trimmed before the oldest kept message', async () => {
    const broker = new MemoryBroker({ maxMessages: 20, recentMessages: 0, recentWindowMs: 0 });
    const { url, hub } = await startHub({ broker });
    const { client, ack } = await oneLogAfterNoise(hub, url, 10, 10);
    expect(ack.payload.history).toEqual({ replayed: 1, complete: true });
    expect((await client.waitForData(1))[0]?.payload.message).toBe('the one');
  });
});

describe('compaction and what a replay needs', () => {
  it('keeps the oldest and the newest progress of each test, so a delta between them still finds the test', async () => {
    let clock = 0;
    // Each publish a millisecond after the one before: older than the (empty) recent window.
    const broker = new MemoryBroker({
      maxMessages: 150,
      recentMessages: 0,
      recentWindowMs: 0,
      now: () => clock,
    });
    const published: DataMessage[] = [];
    for (let test = 1; test <= 40; test++) {
      clock += 1;
      const messages: DataMessage[] = [
        progress(1, test, 10),
        {
          type: 'delta_update',
          payload: {
            resource_type: 'test_execution',
            resource_id: test,
            sequence: 1,
            changes: { score: test },
          },
        },
        progress(1, test, 20),
        progress(1, test, 30),
      ];
      published.push(...messages);
      await broker.publish(messages);
    }
    const kept: DataMessage[] = [];
    for (let from: 'start' | { epoch: string; offset: number } = 'start'; ; ) {
      const read = await broker.read(from, { limit: 1000 });
      kept.push(...read.entries.map((entry) => entry.message));
      const last = read.entries.at(-1);
      if (!last || last.offset >= read.head) break;
      from = { epoch: read.epoch, offset: last.offset };
    }
    expect(kept.length).toBeLessThan(published.length); // compacted
    expect(testsAsCreated(kept)).toEqual(testsAsCreated(published));
  });
});

describe('compaction after the oldest progress of a test was trimmed', () => {
  it('keeps the oldest progress that is left, so an event after it still follows a progress of its test', async () => {
    let clock = 0;
    const broker = new MemoryBroker({
      maxMessages: 20,
      recentMessages: 10,
      recentWindowMs: 0,
      now: () => clock,
    });
    const publish = async (message: DataMessage) => {
      clock += 1;
      await broker.publish([message]);
    };
    const event: DataMessage = {
      type: 'event',
      payload: {
        suite_execution_id: 1,
        test_execution_id: 1,
        event_type: 'tool_call',
        timestamp: '2026-01-01T00:00:00Z',
        payload: {},
      },
    };
    await publish(progress(1, 1, 1));
    for (let i = 0; i < 14; i++) await publish(log(1, 'info', `filler ${i}`));
    await publish(progress(1, 1, 10));
    await publish(event);
    await publish(progress(1, 1, 20));
    await publish(progress(1, 1, 30));
    // Trims the first progress, then makes the others old enough to compact.
    for (let i = 14; i < 24; i++) await publish(log(1, 'info', `filler ${i}`));
    const kept = (await broker.read('start', { limit: 1000 })).entries.map((entry) => entry.message);
    const firstProgress = kept.findIndex((m) => m.type === 'test_progress');
    const theEvent = kept.findIndex((m) => m.type === 'event');
    expect(theEvent).toBeGreaterThanOrEqual(0);
    expect(firstProgress).toBeGreaterThanOrEqual(0);
    expect(firstProgress).toBeLessThan(theEvent);
  });
});

describe('bounded replay work', () => {
  it('reads history in pages, however long the history', async () => {
    const broker = new RecordingBroker();
    const { url, hub } = await startHub({ broker });
    const { client, ack } = await oneLogAfterNoise(hub, url, 20, 1000);
    expect(ack.payload.history).toEqual({ replayed: 1, complete: true });
    await client.waitForData(1);
    expect(broker.readSizes.length).toBeGreaterThan(1);
    expect(Math.max(...broker.readSizes)).toBeLessThanOrEqual(1000);
  });

  it('bounds the requests a connection may have waiting, answering the excess with an error', async () => {
    const never = new Promise<boolean>(() => {});
    const { url } = await startHub({
      authorizeSubscription: (_principal, topic) => (topic === 'logs' ? never : true),
      rateLimit: { messagesPerSecond: 1000, burst: 1000 },
    });
    const client = await connect(url);
    client.send({ type: 'subscribe', id: 'stuck', payload: { topic: 'logs' } });
    for (let i = 0; i < 300; i++)
      client.send({ type: 'subscribe', id: i, payload: { topic: 'suite:progress' } });
    const refused = await client.waitFor((m) => m.type === 'error' && m.payload.code === 'rate_limited');
    // The stuck request and the 255 behind it wait; the 256th behind it is the first refused.
    expect(refused.id).toBe(255);
    expect(String(refused.payload.message)).toMatch(/256 requests are already waiting/);
    await client.waitFor((m) => m.id === 299);
    const errors = client.messages.filter((m) => m.type === 'error');
    expect(errors.map((m) => m.id)).toEqual(Array.from({ length: 45 }, (_, i) => 255 + i));
  });

  it('resumes many subscriptions while live messages keep arriving, losing and repeating nothing', async () => {
    const { url, hub } = await startHub({ softBufferedBytes: 4096, maxBufferedBytes: 4 * 1024 * 1024 });
    const first = await connect(url, 'client_id=busy');
    await first.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    const ack = first.messages.find((m) => m.type === 'subscribed')?.payload as Position;
    await first.close();
    const batch = (from: number, n: number): DataMessage[] =>
      Array.from({ length: n }, (_, i) => log(1, 'info', `m${from + i}`));
    await hub.publish(batch(0, 3000));
    const second = await connect(url, 'client_id=busy', { timeoutMs: 15_000 });
    second.send({
      type: 'resume',
      id: 'r',
      payload: {
        epoch: ack.epoch,
        offset: ack.offset,
        sequence: 0,
        subscriptions: [{ topic: 'logs', filter: { suite_execution_id: 1 } }],
      },
    });
    for (let i = 0; i < 10; i++) await hub.publish(batch(3000 + i * 100, 100));
    const data = await second.waitForData(4000);
    expect(data.map((m) => m.payload.message)).toEqual(
      batch(0, 4000).map((m) => (m.payload as { message: string }).message),
    );
    expect(data.map((m) => m.sequence)).toEqual(data.map((_, i) => i + 1));
  }, 20_000);
});

describe('memory held for a reader that does not read', () => {
  it('releases superseded progress queued for a stuck reader, and closes it once what it holds passes the limit', async () => {
    const { url, hub } = await startHub({ softBufferedBytes: 1024, maxBufferedBytes: 64 * 1024 });
    const client = await connect(url);
    await client.request('subscribe', { topic: 'test:progress' });
    (client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // The same key over and over: coalescing keeps only the newest, so this reader holds little.
    for (let i = 0; i < 200; i++)
      await hub.publish(Array.from({ length: 100 }, (_, j) => progress(1, 1, (i * 100 + j) % 100)));
    const buffered = (await hub.clients())[0] as unknown as { buffered_bytes: number };
    expect(buffered.buffered_bytes).toBeLessThan(64 * 1024);
    // Distinct keys cannot be coalesced: the reader is closed once it holds more than the hard limit.
    const closed = client.waitForClose();
    for (let i = 0; i < 100; i++)
      await hub.publish(Array.from({ length: 100 }, (_, j) => progress(1, i * 100 + j, 50)));
    (client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await closed).code).toBe(1013);
  });
});

describe('heartbeat', () => {
  it('reaps a connection that sends pongs on its own but never answers the ping', async () => {
    const { url } = await startHub({ pingInterval: 100, pingTimeout: 100 });
    const ws = new WebSocket(url, { autoPong: false });
    disposer.add(() => ws.terminate());
    await new Promise((resolve) => ws.once('open', resolve));
    const timer = setInterval(() => ws.pong(Buffer.from('unsolicited')), 30);
    disposer.add(() => clearInterval(timer));
    const started = Date.now();
    const code = await new Promise<number>((resolve) => ws.once('close', resolve));
    expect(code).toBe(1006);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('a resume with refused subscriptions', () => {
  it('resumes the valid subscriptions and refuses the others one by one, naming each', async () => {
    const { url, hub } = await startHub({
      authorizeSubscription: (_principal, _topic, filter) => filter.suite_execution_id !== 2,
      maxSubscriptions: 2,
    });
    const first = await connect(url, 'client_id=partly');
    const ack = await first.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    await first.close();
    await hub.publish([log(1, 'info', 'missed'), log(2, 'info', 'forbidden suite')]);
    const second = await connect(url, 'client_id=partly');
    second.send({
      type: 'resume',
      id: 'resume-1',
      payload: {
        epoch: ack.payload.epoch,
        offset: ack.payload.offset,
        sequence: 0,
        subscriptions: [
          { topic: 'logs', filter: { suite_execution_id: 1 } },
          { topic: 'logs', filter: { suite_execution_id: 2 } },
          { topic: 'test:progres' },
          { topic: 'suite:progress' },
          { topic: 'suite:completed' },
        ],
      },
    });
    const resumed = await second.waitFor((m) => m.type === 'resumed');
    expect(resumed.payload).toMatchObject({ recovered: true, complete: true, replayed: 1 });
    const errors = second.messages.filter((m) => m.type === 'error');
    expect(errors.map((m) => [m.id, m.payload.code, m.payload.details])).toEqual([
      ['resume-1', 'unknown_topic', { topic: 'test:progres' }],
      ['resume-1', 'forbidden', { topic: 'logs', filter: { suite_execution_id: 2 } }],
      ['resume-1', 'too_many_subscriptions', { topic: 'suite:completed', filter: {} }],
    ]);
    expect((await second.waitForData(1)).map((m) => m.payload.message)).toEqual(['missed']);
  });
});

describe('what operators see of each client', () => {
  it('lists buffered bytes, sequence, position, lag, counts and reconnects, with totals in the metrics', async () => {
    const { url, hub } = await startHub();
    const first = await connect(url, 'client_id=watched');
    await first.close();
    const client = await connect(url, 'client_id=watched');
    await client.request('subscribe', { topic: 'logs' });
    await hub.publish([log(1, 'info', 'a'), log(1, 'info', 'b')]);
    await client.waitForData(2);
    const [info] = await hub.clients();
    expect(info).toMatchObject({
      client_id: 'watched',
      last_sequence: 2,
      sent: 2,
      coalesced: 0,
      replaying: false,
      reconnects: 1,
      lag_messages: 0,
      lag_seconds: 0,
      buffered_bytes: 0,
      position: { offset: 2 },
    });
    const metrics = await hub.metrics();
    expect(metrics).toMatch(/^atp_ws_reconnects_total 1$/m);
    expect(metrics).toMatch(/^atp_ws_buffered_bytes 0$/m);
    expect(metrics).toMatch(/^atp_ws_replays_active 0$/m);
  });
});

/**
 * A broker whose stream this test drives: appends and epoch changes happen at once in history
 * (what `read` sees), while the hub receives them only when the test releases them (a process
 * that reads the shared stream late).
 */
class LaggingBroker implements Broker {
  epoch = 'e1';
  entries: StreamEntry[] = [];
  held: StreamBatch[] = [];
  #listener: ((batch: StreamBatch) => void) | undefined;

  append(...messages: DataMessage[]): void {
    const head = this.entries.at(-1)?.offset ?? 0;
    const batch = messages.map((message, i) => ({
      offset: head + i + 1,
      message,
      json: JSON.stringify(message),
      publishedAt: Date.now(),
    }));
    this.entries.push(...batch);
    this.held.push({ epoch: this.epoch, entries: batch });
  }

  /** The stream's history is lost: a new epoch, empty. */
  reset(epoch: string): void {
    this.epoch = epoch;
    this.entries = [];
    this.held.push({ epoch, entries: [], head: 0 });
  }

  release(): void {
    for (const batch of this.held.splice(0)) this.#listener?.(batch);
  }

  async publish(messages: readonly DataMessage[]): Promise<void> {
    this.append(...messages);
    this.release();
  }

  /** Runs when a reader starts, before it announces where it reads from. */
  onSubscribe = (): void => {};

  async subscribe(listener: (batch: StreamBatch) => void): Promise<() => Promise<void>> {
    this.onSubscribe();
    this.#listener = listener;
    listener({ epoch: this.epoch, entries: [], head: this.entries.at(-1)?.offset ?? 0 });
    return async () => {};
  }

  async read(from: ReplayFrom, options: { limit?: number } = {}): Promise<HistoryRead> {
    const head = this.entries.at(-1)?.offset ?? 0;
    const page = (after: number) =>
      this.entries.filter((e) => e.offset > after).slice(0, options.limit ?? Number.POSITIVE_INFINITY);
    if (from === 'start') return { epoch: this.epoch, head, entries: page(0), complete: true };
    if (from.epoch !== this.epoch)
      return { epoch: this.epoch, head, entries: page(0), complete: false, reason: GapReason.EpochChanged };
    if (from.offset > head)
      return { epoch: this.epoch, head, entries: [], complete: false, reason: GapReason.UnknownPosition };
    return { epoch: this.epoch, head, entries: page(from.offset), complete: true };
  }

  async position(): Promise<{ epoch: string; offset: number }> {
    return { epoch: this.epoch, offset: this.entries.at(-1)?.offset ?? 0 };
  }

  async close(): Promise<void> {}
}

describe('a process that reads the stream late', () => {
  it('does not send again live what a resume already replayed from a newer epoch', async () => {
    const broker = new LaggingBroker();
    const { url } = await startHub({ broker });
    const first = await connect(url, 'client_id=late');
    await first.request('subscribe', { topic: 'logs' });
    await broker.publish([log(1, 'info', 'a'), log(1, 'info', 'b')]);
    const seen = await first.waitForData(2);
    await first.close();
    // The stream loses its history and grows again; this process has not read any of it yet.
    broker.reset('e2');
    broker.append(log(1, 'info', 'c'), log(1, 'info', 'd'));
    const second = await connect(url, 'client_id=late');
    const last = seen[1] as unknown as { epoch: string; offset: number; sequence: number };
    const resumed = await second.request('resume', {
      epoch: last.epoch,
      offset: last.offset,
      sequence: last.sequence,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({ recovered: false, reason: GapReason.EpochChanged, epoch: 'e2' });
    await second.waitForData(2);
    // Now this process reads what it missed, then something new is published.
    broker.release();
    await broker.publish([log(1, 'info', 'e')]);
    await second.waitFor((m) => m.payload.message === 'e');
    await second.request('ping', {});
    expect(second.data().map((m) => [m.payload.message, m.epoch, m.offset, m.sequence])).toEqual([
      ['c', 'e2', 1, 4],
      ['d', 'e2', 2, 5],
      ['e', 'e2', 3, 6],
    ]);
  });

  it('greets with the position the broker announced it reads from, so nothing published before is lost', async () => {
    const broker = new LaggingBroker();
    // A publish lands between the moment a hub could read the position and the start of its reader:
    // the reader starts after it, so the hub must take its position from the reader, not from before.
    broker.onSubscribe = () => {
      broker.append(log(1, 'info', 'in between'));
      broker.held = [];
    };
    const { url } = await startHub({ broker });
    const client = await connect(url);
    expect((client.messages[0] as unknown as { payload: Position }).payload).toEqual(
      expect.objectContaining({ epoch: 'e1', offset: 1 }),
    );
  });
});

describe('a flood of WebSocket ping frames', () => {
  it('answers pings within the rate limit, then refuses and closes with 1008 like any flood', async () => {
    const { url } = await startHub({
      rateLimit: { messagesPerSecond: 10, burst: 20, closeAfterRefused: 50 },
    });
    const client = await connect(url);
    let pongs = 0;
    client.ws.on('pong', () => {
      pongs += 1;
    });
    for (let i = 0; i < 10; i++) client.ws.ping(Buffer.from(`p${i}`));
    for (let wait = 0; pongs < 10 && wait < 100; wait++) await new Promise((r) => setTimeout(r, 20));
    expect(pongs).toBe(10);
    const closed = client.waitForClose();
    for (let i = 0; i < 200; i++) client.ws.ping(Buffer.from(`f${i}`));
    expect((await closed).code).toBe(1008);
    expect(pongs).toBeLessThanOrEqual(21);
    expect(client.messages.filter((m) => m.payload.code === 'rate_limited')).toHaveLength(1);
  });
});

describe('memory held by subscriptions', () => {
  it('bounds the bytes of topics and filters one connection holds, whatever its subscription count', async () => {
    const { url } = await startHub();
    const client = await connect(url);
    const ids = (n: number) => Array.from({ length: 50 }, (_, i) => `${n}-${i}-${'x'.repeat(200)}`);
    const first = await client.request('subscribe', { topic: 'test:progress', filter: { test_id: ids(1) } });
    expect(first.type).toBe('subscribed');
    const second = await client.request('subscribe', { topic: 'test:progress', filter: { test_id: ids(2) } });
    expect(second.payload).toMatchObject({ code: 'too_many_subscriptions' });
    expect(String(second.payload.message)).toMatch(/16384 bytes/);
    // Room comes back with the first one gone; small subscriptions are not affected.
    await client.request('unsubscribe', { topic: 'test:progress', filter: { test_id: ids(1) } });
    expect(
      (await client.request('subscribe', { topic: 'test:progress', filter: { test_id: ids(2) } })).type,
    ).toBe('subscribed');
    expect(
      (await client.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } })).type,
    ).toBe('subscribed');
  });

  it('counts bytes, not characters: filters of non-ASCII text reach the bound sooner', async () => {
    const { url } = await startHub();
    const client = await connect(url);
    // 20 ids of 100 '€' (3 bytes each in UTF-8): about 6 KB per subscription, 2 KB in characters.
    const ids = (n: number) => Array.from({ length: 20 }, (_, i) => `${n}-${i}-${'€'.repeat(100)}`);
    const answers: string[] = [];
    for (let n = 0; n < 5; n++) {
      const answer = await client.request('subscribe', {
        topic: 'test:progress',
        filter: { test_id: ids(n) },
      });
      answers.push(answer.type === 'subscribed' ? 'subscribed' : String(answer.payload.code));
    }
    // 16,384 bytes hold two such subscriptions, not the five that 16,384 characters would.
    expect(answers).toEqual([
      'subscribed',
      'subscribed',
      'too_many_subscriptions',
      'too_many_subscriptions',
      'too_many_subscriptions',
    ]);
  });
});

describe('history bounded in bytes', () => {
  it('counts the bytes of each message as UTF-8, as Redis does', async () => {
    const broker = new MemoryBroker({ maxBytes: 100_000 });
    for (let i = 0; i < 100; i++) await broker.publish([log(1, 'info', `${i} ${'€'.repeat(1000)}`)]);
    let bytes = 0;
    for (const entry of (await broker.read('start', { limit: 1000 })).entries)
      bytes += Buffer.byteLength(entry.json);
    expect(bytes).toBeLessThanOrEqual(100_000);
    expect(bytes).toBeGreaterThan(50_000);
  });
});

describe('history trimmed under a replay', () => {
  it('ends the replay at a hole in the numbering when fewer messages than announced are left', async () => {
    let reads = 0;
    let flood: (() => Promise<void>) | undefined;
    class TrimmingBroker extends MemoryBroker {
      override async read(from: ReplayFrom, options?: { limit?: number }): Promise<HistoryRead> {
        // The fifth page: pass 1 read three, pass 2 reuses the first and reads the second now.
        if (++reads === 5) await flood?.();
        return super.read(from, options);
      }
    }
    const broker = new TrimmingBroker({ maxMessages: 3000, recentMessages: 0, recentWindowMs: 0 });
    const { url, hub } = await startHub({ broker });
    for (let i = 0; i < 3; i++)
      await hub.publish(Array.from({ length: 900 }, (_, j) => log(1, 'info', `old ${i}-${j}`)));
    flood = () => hub.publish(Array.from({ length: 3000 }, (_, j) => log(2, 'info', `noise ${j}`)));
    const client = await connect(url, '', { timeoutMs: 15_000 });
    const ack = await client.request('subscribe', {
      topic: 'logs',
      filter: { suite_execution_id: 1 },
      from: 'start',
    });
    expect(ack.payload.history).toEqual({ replayed: 2700, complete: true });
    // Once the replay is over (published earlier, 'after' could be trimmed by the flood as well).
    for (let i = 0; i < 200 && (await hub.clients())[0]?.replaying !== false; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await hub.publish(log(1, 'info', 'after'));
    const after = await client.waitFor((m) => m.payload.message === 'after');
    const replayed = client.data().filter((m) => m !== after);
    expect(replayed.length).toBeLessThan(2700);
    // The replay ended at a hole: the client, counting 2700 announced messages, sees it is over.
    expect(replayed.map((m) => m.sequence)).toEqual(replayed.map((_, i) => i + 1));
    expect(after.sequence).toBeGreaterThan(replayed.length + 1);
  }, 20_000);
});
