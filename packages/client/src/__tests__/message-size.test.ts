import { afterEach, describe, expect, it } from 'vitest';
import type { ATPWebSocketError } from '../index.js';
import { confirmed, disposer, log, newClient, record, startHub, until } from './helpers.js';

afterEach(() => disposer.run());

// A subscription whose frame is over the server's `maxPayload` gets the connection closed with 1009.
// Sent again in every resume, it would close every connection: the client refuses it instead, says
// so, and goes on with the others.
describe('a subscription over the server message size limit', () => {
  it('is refused and reported after the 1009, not sent again; the other subscriptions go on', async () => {
    const { url, hub } = await startHub({ maxPayload: 4096 });
    const ws = newClient(url);
    const got = record(ws);
    const errors: ATPWebSocketError[] = [];
    ws.on('error', ({ error }) => errors.push(error));
    ws.subscribe('logs', { suite_execution_id: 1 });
    await ws.connect();
    await confirmed(ws);
    const big = ws.subscribe('test:progress', { test_id: 'x'.repeat(8000) });
    const subscriptionErrors: ATPWebSocketError[] = [];
    big.on('error', (error) => subscriptionErrors.push(error));
    await expect(big.ready).rejects.toMatchObject({ code: 'message_too_large' });
    expect(errors.map((e) => e.code)).toContain('message_too_large');
    expect(subscriptionErrors.map((e) => e.code)).toEqual(['message_too_large']);
    await until(() => ws.isConnected, 'reconnected');
    await hub.publish([log(1, 'after')]);
    await got.waitForData(1);
    expect(got.data.map((d) => d.payload.message)).toEqual(['after']);
    // One close for the oversized subscribe, then none: it is not in any resume.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(got.disconnects.map((d) => d.code)).toEqual([1009]);
    expect(got.gaps).toEqual([]);
  });

  it('is refused when a resume carries it, and the resume of the others then succeeds', async () => {
    const { url, hub, cutConnections } = await startHub({ maxPayload: 4096 });
    const ws = newClient(url);
    const got = record(ws);
    const errors: ATPWebSocketError[] = [];
    ws.on('error', ({ error }) => errors.push(error));
    ws.subscribe('logs', { suite_execution_id: 1 });
    await ws.connect();
    await confirmed(ws);
    await hub.publish([log(1, 'one')]);
    await got.waitForData(1);
    // Added while the connection is down: it goes out in the next connection's resume.
    ws.on('disconnect', () => {
      if (!big) big = ws.subscribe('test:progress', { test_id: 'y'.repeat(8000) });
    });
    let big: ReturnType<typeof ws.subscribe> | undefined;
    cutConnections();
    await until(() => big !== undefined, 'the big subscription added');
    await expect(big?.ready).rejects.toMatchObject({ code: 'message_too_large' });
    await until(() => ws.isConnected && ws.pendingRequests === 0, 'resumed without it');
    await hub.publish([log(1, 'two')]);
    await got.waitForData(2);
    expect(got.data.map((d) => d.payload.message)).toEqual(['one', 'two']);
    expect(got.sequences()).toEqual([1, 2]);
    expect(got.gaps).toEqual([]);
    expect(errors.filter((e) => e.code === 'message_too_large')).toHaveLength(1);
    expect(ws.subscriptions.map((s) => s.topic)).toContain('logs');
  });
});
