import type { ReplayFrom } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { type Broker, type DataMessage, MemoryBroker, type StreamBatch } from '../index.js';
import { connect, disposer, log, startHub } from './helpers.js';

/** A view of a shared broker whose batches reach its hub late, like a process that reads the stream behind others. */
class LaggingBroker implements Broker {
  #release: Array<() => void> = [];
  #holding = false;
  constructor(readonly inner: Broker) {}
  hold(): void {
    this.#holding = true;
  }
  flush(): void {
    this.#holding = false;
    for (const release of this.#release.splice(0)) release();
  }
  publish(messages: readonly DataMessage[]) {
    return this.inner.publish(messages);
  }
  subscribe(listener: (batch: StreamBatch) => void) {
    return this.inner.subscribe((batch) => {
      if (this.#holding) this.#release.push(() => listener(batch));
      else listener(batch);
    });
  }
  read(from: ReplayFrom) {
    return this.inner.read(from);
  }
  position() {
    return this.inner.position();
  }
  async close() {}
}

/** A broker whose stream can be lost and restarted under a new epoch, as Redis restarting empty does. */
class ResettableBroker implements Broker {
  #inner = new MemoryBroker();
  #listeners = new Set<(batch: StreamBatch) => void>();
  #stop: (() => Promise<void>) | undefined;

  async lose(): Promise<void> {
    await this.#stop?.();
    this.#inner = new MemoryBroker();
    await this.#attach();
  }
  async #attach(): Promise<void> {
    this.#stop = await this.#inner.subscribe((batch) => {
      for (const listener of this.#listeners) listener(batch);
    });
  }
  publish(messages: readonly DataMessage[]) {
    return this.#inner.publish(messages);
  }
  async subscribe(listener: (batch: StreamBatch) => void) {
    this.#listeners.add(listener);
    if (!this.#stop) await this.#attach();
    return async () => {
      this.#listeners.delete(listener);
    };
  }
  read(from: ReplayFrom) {
    return this.#inner.read(from);
  }
  position() {
    return this.#inner.position();
  }
  async close() {}
}

describe('hubs sharing one broker', () => {
  it('does not repeat messages when a client resumes on a hub that lags behind it', async () => {
    const shared = new MemoryBroker();
    const a = await startHub({ broker: shared });
    const lagging = new LaggingBroker(shared);
    const b = await startHub({ broker: lagging });
    const first = await connect(a.url, 'client_id=ahead');
    await first.request('subscribe', { topic: 'logs' });
    lagging.hold();
    await a.hub.publish([log(1, 'info', 'one'), log(1, 'info', 'two'), log(1, 'info', 'three')]);
    const seen = await first.waitForData(3);
    const { epoch, offset, sequence } = seen[2] as unknown as {
      epoch: string;
      offset: number;
      sequence: number;
    };
    await first.close();

    const second = await connect(b.url, 'client_id=ahead');
    const resumed = await second.request('resume', {
      epoch,
      offset,
      sequence,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({ recovered: true, replayed: 0, next_sequence: 4, offset: 3 });
    expect((await second.request('ping', {})).payload).toMatchObject({ offset: 3 });
    lagging.flush();
    await a.hub.publish(log(1, 'info', 'four'));
    const data = await second.waitForData(1);
    await second.request('ping', {});
    expect(second.data().map((m) => [m.payload.message, m.sequence])).toEqual([['four', 4]]);
    expect(data).toHaveLength(1);
  });

  it('marks a hole in the numbering when the stream is lost under live clients', async () => {
    const broker = new ResettableBroker();
    const { hub, url } = await startHub({ broker });
    disposer.add(() => broker.close());
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs' });
    await hub.publish([log(1, 'info', 'a'), log(1, 'info', 'b')]);
    await client.waitForData(2);
    await broker.lose();
    await hub.publish(log(1, 'info', 'after the loss'));
    const data = await client.waitForData(3);
    expect(data.map((m) => [m.payload.message, m.sequence])).toEqual([
      ['a', 1],
      ['b', 2],
      ['after the loss', 4],
    ]);
    expect(data[2]?.epoch).not.toBe(data[1]?.epoch);
  });
});
