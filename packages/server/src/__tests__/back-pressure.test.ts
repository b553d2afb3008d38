import type { DataMessage } from '@atp/ws-protocol';
import { CloseCode } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { connect, log, progress, startHub, testsAsCreated } from './helpers.js';

const bigText = 'x'.repeat(8 * 1024);

describe('slow consumers', () => {
  it('closes a stuck consumer with 1013 once its buffer passes the hard limit, and keeps fast clients whole', async () => {
    const { url, hub } = await startHub({ softBufferedBytes: 32 * 1024, maxBufferedBytes: 256 * 1024 });
    const fast = await connect(url);
    await fast.request('subscribe', { topic: 'logs' });
    const stuck = await connect(url);
    await stuck.request('subscribe', { topic: 'logs' });
    stuck.ws.pause(); // stops reading: the kernel buffers fill, then the server's
    let published = 0;
    for (let round = 0; round < 200 && stuck.ws.readyState === stuck.ws.OPEN; round++) {
      await hub.publish(Array.from({ length: 20 }, (_, i) => log(1, 'info', `${round}-${i} ${bigText}`)));
      published += 20;
      await fast.waitForData(published);
      const metrics = await hub.metrics();
      if (/atp_ws_slow_consumer_closes_total 1/.test(metrics)) break;
    }
    stuck.ws.resume();
    const closed = await stuck.waitForClose();
    expect([CloseCode.TryAgainLater, 1006]).toContain(closed.code);
    expect(await hub.metrics()).toMatch(/atp_ws_slow_consumer_closes_total 1/);
    const data = fast.data();
    expect(data).toHaveLength(published);
    expect(data.every((m, i) => m.sequence === i + 1)).toBe(true);
    await expect.poll(async () => (await hub.clients()).length).toBe(1);
  });

  it('coalesces superseded progress for a slow reader but never drops a completion', async () => {
    const { url, hub } = await startHub({ softBufferedBytes: 4 * 1024, maxBufferedBytes: 64 * 1024 * 1024 });
    const slow = await connect(url);
    await slow.request('subscribe', { topic: 'test:progress' });
    await slow.request('subscribe', { topic: 'test:completed' });
    slow.ws.pause();
    const padded = (suite: number, test: number, percent: number) => {
      const message = progress(suite, test, percent);
      (message.payload as { message?: string }).message = bigText;
      return message;
    };
    for (let step = 0; step < 400; step++) {
      await hub.publish([padded(1, 1, (step % 100) + 0.5), padded(1, 2, (step % 100) + 0.5)]);
    }
    await hub.publish({
      type: 'test_completed',
      payload: { suite_execution_id: 1, test_execution_id: 1, test_id: 't', success: true },
    });
    await hub.publish([padded(1, 1, 100), padded(1, 2, 100)]);
    slow.ws.resume();
    const last = await slow.waitFor(
      (m) =>
        m.type === 'test_progress' && m.payload.test_execution_id === 2 && m.payload.progress_percent === 100,
    );
    const data = slow.data();
    expect(data.length).toBeLessThan(803);
    expect(data.filter((m) => m.type === 'test_completed')).toHaveLength(1);
    expect(data.map((m) => m.sequence)).toEqual(Array.from({ length: data.length }, (_, i) => i + 1));
    expect(data.at(-1)).toBe(last);
    expect(await hub.metrics()).toMatch(/atp_ws_dropped_total [1-9]/);
  });

  it('drops no field a later progress does not carry: what the slow reader merges equals what was published', async () => {
    const { url, hub } = await startHub({ softBufferedBytes: 4 * 1024, maxBufferedBytes: 64 * 1024 * 1024 });
    const slow = await connect(url);
    await slow.request('subscribe', { topic: 'suite:progress' });
    slow.ws.pause();
    type Suite = Record<string, unknown>;
    let truth: Suite = {};
    for (let step = 1; step <= 300; step++) {
      const payload: Suite = {
        suite_execution_id: 1,
        status: 'running',
        progress_percent: step / 3,
        completed_tests: step,
        total_tests: 300,
        agent_name: bigText,
      };
      // Every 10th carries the optional counts and name; the others only what is required.
      if (step % 10 === 7) Object.assign(payload, { passed_tests: step, suite_name: `named at ${step}` });
      truth = { ...truth, ...payload };
      await hub.publish({ type: 'suite_progress', payload } as never);
    }
    slow.ws.resume();
    await slow.waitFor((m) => m.type === 'suite_progress' && m.payload.completed_tests === 300);
    const merged: Suite = {};
    for (const m of slow.data()) Object.assign(merged, m.payload);
    expect(merged).toEqual(truth);
    expect(slow.data().length).toBeLessThan(300); // superseded progress was dropped
  });

  it('keeps the oldest queued progress of a test: a delta between it and a newer one still finds the test', async () => {
    const { url, hub } = await startHub({ softBufferedBytes: 4 * 1024, maxBufferedBytes: 64 * 1024 * 1024 });
    const slow = await connect(url);
    await slow.request('subscribe', { topic: 'test:progress' });
    await slow.request('subscribe', { topic: 'delta' });
    slow.ws.pause();
    const published: DataMessage[] = [];
    const send = async (message: DataMessage) => {
      published.push(message);
      await hub.publish(message);
    };
    const padded = (test: number, percent: number) => {
      const message = progress(1, test, percent);
      (message.payload as { message?: string }).message = bigText;
      return message;
    };
    for (let test = 1; test <= 40; test++) {
      // The first progress of a test creates it; a delta of the test means something only after it.
      await send(padded(test, 10));
      await send({
        type: 'delta_update',
        payload: {
          resource_type: 'test_execution',
          resource_id: test,
          sequence: 1,
          changes: { score: test },
        },
      });
      await send(padded(test, 20));
      await send(padded(test, 30));
    }
    slow.ws.resume();
    await slow.waitFor(
      (m) =>
        m.type === 'test_progress' && m.payload.test_execution_id === 40 && m.payload.progress_percent === 30,
    );
    expect(testsAsCreated(slow.data() as unknown as DataMessage[])).toEqual(testsAsCreated(published));
    expect(await hub.metrics()).toMatch(/atp_ws_dropped_total [1-9]/);
  });

  it('survives a client that disconnects in the middle of a publish burst', async () => {
    const { url, hub } = await startHub();
    const steady = await connect(url);
    await steady.request('subscribe', { topic: 'logs' });
    const leaver = await connect(url);
    await leaver.request('subscribe', { topic: 'logs' });
    const burst = hub.publish(Array.from({ length: 500 }, (_, i) => log(1, 'info', `m${i}`)));
    leaver.ws.terminate();
    await burst;
    await hub.publish(Array.from({ length: 500 }, (_, i) => log(1, 'info', `n${i}`)));
    expect(await steady.waitForData(1000)).toHaveLength(1000);
    const fresh = await connect(url);
    expect((await fresh.request('ping', {})).type).toBe('pong');
  });
});

describe('heartbeat', () => {
  it('terminates a half-open connection that stops answering pings, within interval + timeout', async () => {
    const { url, hub } = await startHub({ pingInterval: 100, pingTimeout: 100 });
    const healthy = await connect(url);
    const { WebSocket } = await import('ws');
    // A peer whose ws library does not answer ping frames: half-open from the server's point of view.
    const silent = new WebSocket(url, { autoPong: false });
    const closed = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
    await new Promise((resolve) => silent.once('open', resolve));
    const started = Date.now();
    expect(await closed).toBe(1006);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(healthy.ws.readyState).toBe(healthy.ws.OPEN);
    await expect.poll(async () => (await hub.clients()).length).toBe(1);
  });
});
