import { describe, expect, it } from 'vitest';
import type { ATPWebSocketServer } from '@atp/ws-server';
import type { SequenceGapEvent } from '../index.js';
import { WebSocket } from 'ws';
import { ATPWebSocket } from '../index.js';
import { confirmed, disposer, log, newClient, next, publishRange, startHub, until } from './helpers.js';
import { iifeClass } from './iife-helpers.js';

// Adversarial tests of @atp/ws-client (ESM build) against a real hub, written from its README and
// docs/PROTOCOL.md only: "every message once, in order, or an explicit gap".

/** Publishes log entries `m<from>` … `m<to>` of `suite`, 1,000 per call. */
async function publishLogs(hub: ATPWebSocketServer, from: number, to: number, suite = 1): Promise<void> {
  for (let start = from; start <= to; start += 1000) {
    const end = Math.min(to, start + 999);
    await hub.publish(Array.from({ length: end - start + 1 }, (_, i) => log(suite, `m${start + i}`)));
  }
}

const text = (message: { payload: unknown }) => (message.payload as { message: string }).message;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

describe("from: 'start' after a resume", () => {
  // README, subscribe: "Every reference that asks for history gets it, also when the subscription
  // already exists [...]: what this client already received [...] is replayed locally to that
  // reference, merged in offset order with what the server replays to it, and newer messages follow."
  for (const filter of [{ suite_execution_id: 1 }, { suite_execution_id: [1, 2] }]) {
    it(`a reference with from: 'start' (filter ${JSON.stringify(filter)}) made after a reconnect gets the history and the live messages`, async () => {
      const { hub, url, cutConnections } = await startHub();
      const ws = newClient(url, { pingInterval: 0, logger: null });
      const global: string[] = [];
      const gaps: SequenceGapEvent[] = [];
      ws.on('log_entry', (payload) => global.push(payload.message));
      ws.on('sequence_gap', (gap) => gaps.push(gap));
      ws.subscribe('logs', { suite_execution_id: 1 });
      await ws.connect();
      await confirmed(ws);
      await publishLogs(hub, 1, 3);
      await until(() => global.length === 3, '3 live messages');

      const disconnected = next(ws, 'disconnect');
      cutConnections();
      await disconnected;
      await next(ws, 'connect');
      await until(() => ws.pendingRequests === 0, 'the resume settled');

      const got: string[] = [];
      const handle = ws.subscribe('logs', filter, { from: 'start' });
      handle.on('message', (message) => got.push(text(message)));
      await handle.ready;
      await hub.publish([log(1, 'm4')]);
      await until(() => global.length === 4, 'the live message on the global listener');
      await new Promise((resolve) => setTimeout(resolve, 300));

      expect(gaps).toEqual([]);
      expect(global).toEqual(range(1, 4));
      // Observed on main: [] — neither the history nor the live message m4 reaches the handle.
      expect(got).toEqual(range(1, 4));
    });
  }

  // README: "Global listeners (ws.on('message'), ws.on('test_progress')) never get a message twice."
  it("a from: 'start' reference made after a reconnect, 10,100 messages in, duplicates nothing", async () => {
    const total = 10_100;
    const { hub, url, cutConnections } = await startHub();
    const ws = newClient(url, { pingInterval: 0, logger: null });
    const global: string[] = [];
    const gaps: SequenceGapEvent[] = [];
    ws.on('log_entry', (payload) => global.push(payload.message));
    ws.on('sequence_gap', (gap) => gaps.push(gap));
    ws.subscribe('logs', { suite_execution_id: 1 });
    await ws.connect();
    await confirmed(ws);
    await publishLogs(hub, 1, total);
    await until(() => global.length === total, 'all live', 20_000);

    const disconnected = next(ws, 'disconnect');
    cutConnections();
    await disconnected;
    await next(ws, 'connect');
    await until(() => ws.pendingRequests === 0, 'the resume settled');

    const got: string[] = [];
    const handle = ws.subscribe('logs', { suite_execution_id: 1 }, { from: 'start' });
    handle.on('message', (message) => got.push(text(message)));
    await handle.ready;
    await hub.publish([log(1, 'last')]);
    await until(() => global.includes('last'), 'the live message', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Observed on main: every one of the 10,100 is delivered a second time to the global listener
    // (20,201 deliveries) and to the handle (20,101).
    expect({ global: global.length, handle: got.length }).toEqual({ global: total + 1, handle: total + 1 });
    expect(global).toEqual([...range(1, total), 'last']);
  }, 60_000);
});

describe("from: 'start' on a subscription already held", () => {
  // README: a reference with `from` on an existing subscription gets what the client received
  // "(the last 10,000 messages of the epoch)" replayed locally; the server does not resend them.
  // What neither covers must then be a gap (PROTOCOL/README: "every message [...] or sequence_gap";
  // "A subscription whose from history turns out incomplete emits sequence_gap [...] and a
  // subscription field").
  it("a second reference with from: 'start' after 10,100 messages gets all of them, or a gap naming it", async () => {
    const total = 10_100;
    const { hub, url } = await startHub();
    const ws = newClient(url, { pingInterval: 0, logger: null });
    const global: string[] = [];
    ws.on('log_entry', (payload) => global.push(payload.message));
    ws.subscribe('logs', { suite_execution_id: 1 });
    await ws.connect();
    await confirmed(ws);
    await publishLogs(hub, 1, total);
    await until(() => global.length === total, 'all live', 20_000);

    const got: string[] = [];
    const gaps: SequenceGapEvent[] = [];
    ws.on('sequence_gap', (gap) => gaps.push(gap));
    const handle = ws.subscribe('logs', { suite_execution_id: 1 }, { from: 'start' });
    handle.on('message', (message) => got.push(text(message)));
    await handle.ready;
    await hub.publish([log(1, 'last')]);
    await until(() => got.includes('last'), 'the live message on the handle', 10_000);

    const complete = got.length === total + 1 && got[0] === 'm1';
    // Observed on main: the handle gets m101 … m10100 and 'last' (10,001), with no gap at all.
    expect({
      complete,
      gapsNamingIt: gaps.filter((gap) => gap.subscription !== undefined).length > 0,
    }).not.toEqual({
      complete: false,
      gapsNamingIt: false,
    });
  }, 60_000);
});

describe('many modest subscriptions made while away', () => {
  // README: 1009 refuses "the largest subscription being sent [...] a subscription too large for
  // the server never closes connection after connection"; `ready` rejects with message_too_large
  // "when [...] its filter is over the server's maxPayload". PROTOCOL, Limits: past 16 KiB of
  // subscriptions, "one more is refused with error too_many_subscriptions".
  for (const build of ['ESM', 'IIFE'] as const) {
    it(`${build}: 300 subscriptions of 250 bytes each made while away are not refused as message_too_large one connection at a time`, async () => {
      const { hub, url, cutConnections } = await startHub();
      const Client = build === 'ESM' ? ATPWebSocket : iifeClass();
      const ws = new Client({
        url,
        WebSocket,
        reconnectInterval: 20,
        maxReconnectInterval: 20,
        minUptime: 0,
        jitter: 0,
        pingInterval: 0,
        logger: null,
      });
      disposer.add(() => ws.disconnect());
      const ids: number[] = [];
      const gaps: SequenceGapEvent[] = [];
      const refusals: string[] = [];
      const closes: number[] = [];
      ws.on('test_progress', (payload) => ids.push(payload.test_execution_id));
      ws.on('sequence_gap', (gap) => gaps.push(gap));
      ws.on('error', ({ error }) => refusals.push(error.serverCode ?? error.code));
      ws.on('disconnect', ({ code }) => closes.push(code));
      ws.subscribe('test:progress', { suite_execution_id: 123 });
      await ws.connect();
      await next(ws, 'subscribed');
      await publishRange(hub, 1, 3);
      await until(() => ids.length === 3, '3 live messages');

      const disconnected = next(ws, 'disconnect');
      cutConnections();
      await disconnected;
      closes.length = 0;
      refusals.length = 0;
      // Each about 250 bytes of JSON, far under the 64 KiB maxPayload; 300 of them are not.
      for (let i = 0; i < 300; i += 1) ws.subscribe('test:progress', { test_id: `${'x'.repeat(200)}-${i}` });
      await publishRange(hub, 4, 5);
      await next(ws, 'connect');
      await until(() => ws.pendingRequests === 0 && ws.state === 'open', 'the subscriptions settled', 10_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await publishRange(hub, 6, 6);
      await until(() => ids.at(-1) === 6, 'message 6');

      expect(gaps).toEqual([]);
      expect(ids).toEqual([1, 2, 3, 4, 5, 6]);
      // Observed on main: about 42 closes with 1009, each refusing one of these small subscriptions
      // as message_too_large (with the default backoff that is minutes of reconnecting).
      expect(closes.filter((code) => code === 1009).length).toBeLessThanOrEqual(1);
      expect(refusals.filter((code) => code === 'message_too_large')).toEqual([]);
    }, 30_000);
  }
});

describe('subscribe/release churn under the rate limit', () => {
  // README: requests are "paced under the server's rate limit [...] so the client's subscriptions and
  // the server's never diverge silently"; a plain subscribe/release loop never holds more than two
  // subscriptions, far under the server's 100.
  it('subscribing to 130 suites one after another, releasing each, is never refused as too_many_subscriptions', async () => {
    const { url } = await startHub();
    const ws = newClient(url, { pingInterval: 0, logger: null });
    const refusals: string[] = [];
    ws.on('error', ({ error }) => refusals.push(String(error.serverCode ?? error.code)));
    ws.subscribe('logs', { suite_execution_id: 0 });
    await ws.connect();
    await confirmed(ws);
    const refusedAt: number[] = [];
    const started = Date.now();
    for (let suite = 1; suite <= 130 && Date.now() - started < 40_000; suite += 1) {
      const handle = ws.subscribe('logs', { suite_execution_id: suite });
      try {
        await handle.ready;
      } catch {
        refusedAt.push(suite);
      }
      handle.unsubscribe();
    }
    await until(() => ws.pendingRequests === 0, 'both sides agree', 20_000);
    // Observed on main: the releases' unsubscribes wait behind the later subscribes, the server holds
    // 100 subscriptions by the 119th, which is refused (pendingRequests was 99 then).
    expect(refusals).toEqual([]);
    expect(refusedAt).toEqual([]);
    expect(ws.subscriptions.map((s) => s.filter)).toEqual([{ suite_execution_id: 0 }]);
  }, 60_000);
});
