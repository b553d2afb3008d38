import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { connect, disposer, log, progress, startHub } from './helpers.js';

describe('frames due in one tick', () => {
  it('reach a socket in one write, in publish order, numbered without holes', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs' });
    // The client's TCP socket: one write of the server arrives as one read on loopback.
    const socket = (client.ws as unknown as { _socket: Socket })._socket;
    let reads = 0;
    socket.on('data', () => {
      reads += 1;
    });
    const published = Array.from({ length: 10 }, (_, i) => hub.publish(log(1, 'info', `line ${i}`)));
    await Promise.all(published);
    const data = await client.waitForData(10);
    expect(data.map((m) => (m.payload as { message: string }).message)).toEqual(
      Array.from({ length: 10 }, (_, i) => `line ${i}`),
    );
    expect(data.map((m) => m.sequence)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const offsets = data.map((m) => Number(m.offset));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(reads).toBe(1);
  });

  it('still go out before the closing frame when the hub closes in the same tick', async () => {
    const { url, hub } = await startHub();
    const client = await connect(url);
    await client.request('subscribe', { topic: 'logs' });
    void hub.publish([log(1, 'info', 'a'), log(1, 'info', 'b')]);
    const closing = hub.close();
    expect((await client.waitForClose()).code).toBe(CloseCode.GoingAway);
    await closing;
    expect(client.data().map((m) => (m.payload as { message: string }).message)).toEqual(['a', 'b']);
  });

  it('number each connection on its own when a fan-out shares frames between equal sequences', async () => {
    const { url, hub } = await startHub();
    // Fan-out order: a and c at the same sequence, b (one message ahead) between them.
    const a = await connect(url);
    await a.request('subscribe', { topic: 'logs' });
    const b = await connect(url);
    await b.request('subscribe', { topic: 'logs' });
    await b.request('subscribe', { topic: 'test:progress' });
    const c = await connect(url);
    await c.request('subscribe', { topic: 'logs' });
    await hub.publish(progress(1, 1, 10));
    await b.waitForData(1);
    // One message per tick (each received before the next), as a runner publishing steadily does.
    for (let i = 0; i < 3; i++) {
      await hub.publish(log(1, 'info', `line ${i}`));
      await c.waitForData(i + 1);
    }
    const lines = (client: typeof a) =>
      client
        .data()
        .filter((m) => m.type === 'log_entry')
        .map((m) => [m.sequence, (m.payload as { message: string }).message]);
    await a.waitForData(3);
    await b.waitForData(4);
    await c.waitForData(3);
    expect(lines(a)).toEqual([
      [1, 'line 0'],
      [2, 'line 1'],
      [3, 'line 2'],
    ]);
    expect(lines(b)).toEqual([
      [2, 'line 0'],
      [3, 'line 1'],
      [4, 'line 2'],
    ]);
    expect(lines(c)).toEqual(lines(a));
  });

  it('never rewrite a frame a pending write still holds, while other connections reuse frames', async () => {
    // Server-side sockets, to see that the paused client's writes were really left pending.
    const server = createServer();
    const accepted: Socket[] = [];
    server.on('connection', (socket) => accepted.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    disposer.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { url, hub } = await startHub({
      server,
      softBufferedBytes: 64 * 1024 * 1024,
      maxBufferedBytes: 128 * 1024 * 1024,
    });
    // Fan-out order: b, then a (paused: its writes stay pending), then c, one sequence ahead of a.
    const b = await connect(url);
    await b.request('subscribe', { topic: 'logs' });
    const a = await connect(url, '', { timeoutMs: 30_000 });
    await a.request('subscribe', { topic: 'logs' });
    const c = await connect(url);
    await c.request('subscribe', { topic: 'logs' });
    await c.request('subscribe', { topic: 'test:progress' });
    await hub.publish(progress(1, 1, 10));
    await c.waitForData(1);
    const aSocket = (a.ws as unknown as { _socket: Socket })._socket;
    aSocket.pause();
    const count = 400;
    const text = (i: number) => `${i}:${'x'.repeat(16 * 1024)}`;
    for (let i = 0; i < count; i++) {
      await hub.publish(log(1, 'info', text(i)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await c.waitForData(count + 1);
    const aServerSide = accepted.find((s) => s.remotePort === aSocket.localPort);
    expect(aServerSide?.writableLength).toBeGreaterThan(0);
    aSocket.resume();
    const received = await a.waitForData(count);
    expect(received.map((m) => m.sequence)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(received.map((m) => (m.payload as { message: string }).message)).toEqual(
      Array.from({ length: count }, (_, i) => text(i)),
    );
    expect(c.data().map((m) => m.sequence)).toEqual(Array.from({ length: count + 1 }, (_, i) => i + 1));
  }, 60_000);
});
