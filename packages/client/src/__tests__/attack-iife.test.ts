import { describe, expect, it } from 'vitest';
import { next, publishRange, startHub, until } from './helpers.js';
import { newIifeClient } from './iife-helpers.js';

/**
 * A client of the IIFE build holding one subscription, 3 messages received, then cut off: what the
 * test subscribes while it is away goes into the next resume. Records what it delivers.
 */
async function awayAfterThree() {
  const { hub, url, cutConnections } = await startHub();
  const ws = newIifeClient(url, {
    reconnectInterval: 200,
    maxReconnectInterval: 200,
    jitter: 0,
    logger: null,
  });
  const ids: number[] = [];
  const gaps: string[] = [];
  const refusals: unknown[] = [];
  ws.on('test_progress', (payload) => ids.push(payload.test_execution_id));
  ws.on('sequence_gap', (gap) => gaps.push(gap.reason));
  ws.on('error', ({ error }) => refusals.push(error.serverCode));
  ws.subscribe('test:progress', { suite_execution_id: 123 });
  await ws.connect();
  await next(ws, 'subscribed');
  await publishRange(hub, 1, 3);
  await until(() => ids.length === 3, '3 messages');
  const disconnected = next(ws, 'disconnect');
  cutConnections();
  await disconnected;
  return { hub, ws, ids, gaps, refusals };
}

// Adversarial tests of the IIFE build (dist/browser.global.js), run as built in a context of its own.
describe('the IIFE build under attack', () => {
  // docs/PROTOCOL.md, Resuming after a reconnect: "A refused subscription never spoils a resume";
  // the client README: refused subscriptions are "left out of every later resume; the server resumes
  // the others, so the refusal never causes a gap".
  for (const topic of ['', 'x'.repeat(129)]) {
    it(`a subscription of a malformed topic (${topic.length} characters) made while away does not spoil the resume of the others`, async () => {
      const { hub, ws, ids, gaps, refusals } = await awayAfterThree();
      // Made while away: it goes into the next resume instead of a subscribe of its own.
      let thrown: unknown;
      try {
        ws.subscribe(topic);
      } catch (error) {
        thrown = error;
      }
      await publishRange(hub, 4, 5); // complete history: a resume must replay them
      await next(ws, 'connect');
      await until(() => ws.pendingRequests === 0, 'the subscriptions settled');
      await new Promise((resolve) => setTimeout(resolve, 300)); // a refused resume is followed by subscribes
      await publishRange(hub, 6, 6);
      await until(() => ids.at(-1) === 6, 'message 6');

      // Either refused at once (a TypeError) or refused by the server on its own: never a lost resume.
      if (thrown !== undefined) expect((thrown as Error).name).toBe('TypeError');
      expect(gaps).toEqual([]);
      expect(ids).toEqual([1, 2, 3, 4, 5, 6]);
      // Still reported, and left out of later resumes.
      if (thrown === undefined) expect(refusals).toEqual(['invalid_message']);
      expect(ws.subscriptions.map((s) => s.topic)).toEqual(['test:progress']);
    });
  }

  it('1,000 subscriptions made while away do not spoil the resume of the one held before', async () => {
    const { hub, ws, ids, gaps } = await awayAfterThree();
    for (let suite = 1; suite <= 1000; suite += 1) ws.subscribe('logs', { suite_execution_id: suite });
    await publishRange(hub, 4, 5); // complete history: a resume must replay them
    await next(ws, 'connect');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await publishRange(hub, 6, 6);
    await until(() => ids.at(-1) === 6, 'message 6');
    expect(gaps).toEqual([]);
    expect(ids).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
