import type { Socket } from 'node:net';
import { CloseCode } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { connect, log, startHub } from './helpers.js';

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
});
