import { describe, expect, it } from 'vitest';
import type { ATPWebSocket } from '../index.js';
import { next, progress, publishRange, startHub, until } from './helpers.js';
import { newIifeClient } from './iife-helpers.js';

// The IIFE build is the lean one (see the README's Builds): these tests run the built file itself,
// in a context of its own with `ws` as its WebSocket, against a real hub, to prove it keeps the
// whole delivery guarantee. The browser tests run it in Chromium.
/** The test_execution_id, sequence and gap reasons the client delivered, as plain values. */
function record(ws: ATPWebSocket) {
  const data: Array<[number, number]> = [];
  const gaps: string[] = [];
  ws.on('test_progress', (payload, meta) => data.push([payload.test_execution_id, meta.sequence]));
  ws.on('sequence_gap', (gap) => gaps.push(gap.reason));
  return { data, gaps, waitFor: (n: number) => until(() => data.length >= n, `${n} messages`) };
}

describe('the IIFE build keeps the delivery guarantee (run in Node against a real hub)', () => {
  it('resumes after lost connections: every message once, in order, numbered without a hole', async () => {
    const { hub, url, cutConnections } = await startHub();
    const ws = newIifeClient(url);
    const rec = record(ws);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    await ws.connect();
    await next(ws, 'subscribed');
    await publishRange(hub, 1, 3);
    await rec.waitFor(3);
    for (let round = 0; round < 2; round += 1) {
      cutConnections();
      await publishRange(hub, 4 + round * 3, 6 + round * 3);
      await next(ws, 'connect');
    }
    await rec.waitFor(9);
    await publishRange(hub, 10, 10);
    await rec.waitFor(10);
    expect(rec.data).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]));
    expect(rec.gaps).toEqual([]);
  });

  it('reports epoch_changed when the hub restarted and lost its history', async () => {
    const first = await startHub();
    const ws = newIifeClient(first.url);
    const rec = record(ws);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    await ws.connect();
    await next(ws, 'subscribed');
    await publishRange(first.hub, 1, 2);
    await rec.waitFor(2);
    await first.stop();
    const second = await startHub({}, first.port);
    await next(ws, 'connect', 10000);
    await publishRange(second.hub, 3, 3);
    await rec.waitFor(3);
    expect(rec.gaps).toEqual(['epoch_changed']);
    expect(rec.data.map(([id]) => id)).toEqual([1, 2, 3]);
  });

  it('leaves refused subscriptions out of every resume, with no gap, and says why', async () => {
    const { hub, url, cutConnections } = await startHub({
      maxSubscriptions: 2,
      authorizeSubscription: (_principal, topic) => topic !== 'logs',
    });
    const ws = newIifeClient(url);
    const rec = record(ws);
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(`${error.code}/${error.serverCode}`));
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    ws.subscribe('logs');
    ws.subscribe('suite:progress');
    ws.subscribe('suite:completed');
    await ws.connect();
    await until(() => errors.length === 2, 'two refusals');
    for (let round = 0; round < 2; round += 1) {
      cutConnections();
      await publishRange(hub, 1 + round * 2, 2 + round * 2);
      await next(ws, 'connect');
    }
    await rec.waitFor(4);
    expect(rec.data.map(([id]) => id)).toEqual([1, 2, 3, 4]);
    expect(rec.gaps).toEqual([]);
    expect(errors).toEqual(['server_error/forbidden', 'server_error/too_many_subscriptions']);
    expect(ws.subscriptions.map((s) => s.topic)).toEqual(['test:progress', 'suite:progress']);
  });

  it('paces subscription changes under the rate limit: 60 subscribe/release pairs, then 5 kept', async () => {
    const { hub, url } = await startHub();
    const ws = newIifeClient(url);
    const rec = record(ws);
    await ws.connect();
    for (let suite = 1; suite <= 60; suite += 1)
      ws.subscribe('test:progress', { suite_execution_id: suite })();
    for (const suite of [101, 102, 103, 104, 105])
      ws.subscribe('test:progress', { suite_execution_id: suite });
    await until(() => ws.pendingRequests === 0, 'every request answered', 10000);
    expect(ws.subscriptions).toHaveLength(5);
    await hub.publish([101, 102, 103, 104, 105, 1, 60].map((suite) => progress(suite, suite)));
    await rec.waitFor(5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rec.data.map(([id]) => id)).toEqual([101, 102, 103, 104, 105]);
  });

  it('keeps delivering to the other listeners when one throws, and reports it as error', async () => {
    const { hub, url } = await startHub();
    const ws = newIifeClient(url);
    const codes: string[] = [];
    ws.on('error', ({ error }) => codes.push(error.code));
    ws.on('test_progress', () => {
      throw new Error('boom');
    });
    const rec = record(ws);
    ws.subscribe('test:progress');
    await ws.connect();
    await next(ws, 'subscribed');
    await publishRange(hub, 1, 2);
    await rec.waitFor(2);
    expect(codes).toEqual(['listener_failed', 'listener_failed']);
  });
});
