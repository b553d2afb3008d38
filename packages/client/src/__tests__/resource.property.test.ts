// Random interleavings of snapshot fetches, live messages, lost messages (gaps), server restarts
// (new epoch, history lost) and reconnects, checked against a reference model: once everything in
// flight has arrived, the resource equals the server's state, so no message was applied twice or
// skipped. A reducer that throws now and then (half-applying its change first) changes nothing of
// that, nor does a provider that lags the stream (an honest state a few messages old, with its
// position), a fetch that fails (the handle retries), or messages the connection received before
// the resource was opened (its subscriptions shared with the application's). The transport is the
// WebSocket's: one ordered channel per connection, requests answered in turn.
import type { DeliveredDataMessage } from '@atp/ws-protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MessageMeta } from '../index.js';
import { ATPWebSocketError } from '../errors.js';
import { ResourceSync, type SyncStep } from '../resource.js';

type Item =
  | { kind: 'message'; message: DeliveredDataMessage; meta: MessageMeta }
  | { kind: 'snapshot'; token: number; data: number[]; epoch: string; offset: number }
  | { kind: 'failure'; token: number }
  | { kind: 'gap' };

const action = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('publish' as const), mine: fc.boolean() }), weight: 8 },
  { arbitrary: fc.constant({ type: 'deliver' as const }), weight: 8 },
  { arbitrary: fc.constant({ type: 'serve' as const }), weight: 3 },
  { arbitrary: fc.constant({ type: 'lose' as const }), weight: 1 },
  { arbitrary: fc.constant({ type: 'refetch' as const }), weight: 1 },
  { arbitrary: fc.constant({ type: 'reconnect' as const }), weight: 1 },
  { arbitrary: fc.constant({ type: 'restart' as const }), weight: 1 },
  { arbitrary: fc.constant({ type: 'fault' as const }), weight: 1 },
  {
    arbitrary: fc.record({ type: fc.constant('serveBehind' as const), lag: fc.integer({ min: 1, max: 6 }) }),
    weight: 2,
  },
  { arbitrary: fc.constant({ type: 'fail' as const }), weight: 1 },
  { arbitrary: fc.constant({ type: 'retry' as const }), weight: 2 },
);

type Action = { type: string; mine?: boolean; lag?: number };

function run(actions: Action[], before = 0): void {
  // ── the server ──
  let epochs = 0;
  let epoch = 'e0';
  let offset = 0;
  let truth: number[] = [];
  /** The resource's state after each offset of the current epoch: what a lagging provider answers. */
  let past: Array<{ offset: number; truth: number[] }> = [{ offset: 0, truth: [] }];
  let nextId = 0;
  let sequence = 0;
  // ── the connection ──
  let channel: Item[] = [];
  let requests: number[] = [];
  // ── the client ──
  // `fault` makes the reducer throw on its next call, after corrupting the data it was given.
  let faults = 0;
  const sync = new ResourceSync<number[]>('run', '1', (data, message) => {
    if (faults > 0) {
      faults -= 1;
      data.push(-1);
      throw new Error('reducer bug');
    }
    return [...data, (message.payload as { test_execution_id: number }).test_execution_id];
  });
  let cut = false;
  /** A fetch failed: the handle fetches again after a delay. */
  let retrying = false;
  const fetch = () => {
    requests.push(sync.begin());
  };
  const onStep = (step: SyncStep) => {
    if (step) fetch();
  };
  const publish = (mine: boolean) => {
    const id = nextId++;
    offset += 1;
    if (mine) truth = [...truth, id];
    past.push({ offset, truth });
    const message = {
      type: 'test_completed',
      payload: { suite_execution_id: mine ? 1 : 2, test_execution_id: id, test_id: 't', success: true },
      sequence: ++sequence,
      epoch,
      offset,
    } as DeliveredDataMessage;
    // The client's own filter: only messages of the resource reach it.
    if (mine)
      channel.push({ kind: 'message', message, meta: { sequence, type: message.type, epoch, offset } });
  };
  const deliver = () => {
    const item = channel.shift();
    if (!item) return;
    if (item.kind === 'gap') onStep('resync');
    else if (item.kind === 'message') onStep(sync.message(item.message, item.meta));
    else if (item.kind === 'failure') {
      sync.failed(item.token, new ATPWebSocketError('server_error', 'the provider failed'));
      if (!sync.fetching) retrying = true;
    } else
      onStep(
        sync.snapshot(item.token, {
          kind: 'run',
          resource_id: '1',
          data: item.data,
          epoch: item.epoch,
          offset: item.offset,
        }),
      );
  };
  const serve = (lag = 0) => {
    const token = requests.shift();
    if (token === undefined) return;
    // An honest provider `lag` messages behind: the state and the position it reflects.
    const at = past[Math.max(0, past.length - 1 - lag)] ?? { offset: 0, truth: [] };
    channel.push({ kind: 'snapshot', token, data: [...at.truth], epoch, offset: at.offset });
  };
  const reconnect = (resumed: boolean) => {
    // What was in flight is lost; a resume replays the lost messages (kept history), or reports a gap.
    // A hole in flight stays one (its message is not in this model's history to replay).
    const lost = channel.filter((item) => item.kind !== 'snapshot');
    const unanswered = requests.length > 0 || channel.some((item) => item.kind === 'snapshot');
    channel = resumed ? lost : [{ kind: 'gap' }];
    requests = [];
    if (unanswered && sync.fetching) cut = true;
    if (cut) {
      cut = false;
      fetch();
    }
  };

  // Messages of the resource the connection received before the resource was opened (its
  // subscriptions were in force already): the handle starts from the connection's position.
  for (let i = 0; i < before; i++) publish(true);
  channel = [];
  if (before > 0) sync.seen({ epoch, offset });
  fetch();
  for (const step of actions) {
    switch (step.type) {
      case 'publish':
        publish(step.mine ?? true);
        break;
      case 'deliver':
        deliver();
        break;
      case 'serve':
        serve();
        break;
      case 'lose': {
        // A message of the resource never arrives: the client sees the hole as a gap.
        const index = channel.findIndex((item) => item.kind === 'message');
        if (index >= 0) channel.splice(index, 1, { kind: 'gap' });
        break;
      }
      case 'refetch':
        fetch();
        break;
      case 'fault':
        faults += 1;
        break;
      case 'serveBehind':
        serve(step.lag ?? 1);
        break;
      case 'fail': {
        const token = requests.shift();
        if (token !== undefined) channel.push({ kind: 'failure', token });
        break;
      }
      case 'retry':
        if (retrying) {
          retrying = false;
          fetch();
        }
        break;
      case 'reconnect':
        reconnect(true);
        break;
      case 'restart':
        epochs += 1;
        epoch = `e${epochs}`;
        offset = 0;
        truth = [];
        past = [{ offset: 0, truth: [] }];
        reconnect(false);
        break;
    }
  }
  // Quiesce: every request answered, everything in flight delivered.
  faults = 0;
  for (let guard = 0; (requests.length > 0 || channel.length > 0 || retrying) && guard < 10_000; guard++) {
    if (channel.length > 0) deliver();
    else if (requests.length > 0) serve();
    else {
      retrying = false;
      fetch();
    }
  }
  expect(sync.fetching).toBe(false);
  expect(sync.status).toBe('live');
  expect(sync.data).toEqual(truth);
  expect(sync.epoch).toBe(epoch);
}

describe('ResourceSync against a reference model', () => {
  it('ends equal to the server after any interleaving of fetches, messages, gaps, reconnects and restarts', () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 200 }), fc.integer({ min: 0, max: 8 }), (actions, before) =>
        run(actions, before),
      ),
      { numRuns: 1000 },
    );
  });

  it('a message lost in flight, then a resumed reconnect: the hole still refetches (seed of a former flake)', () => {
    run([
      { type: 'serve' },
      { type: 'publish', mine: true },
      { type: 'deliver' },
      { type: 'lose' },
      { type: 'reconnect' },
    ]);
  });

  it('a reducer that throws refetches: the message it threw on is in the next snapshot, none twice', () => {
    run([
      { type: 'serve' },
      { type: 'deliver' },
      { type: 'publish', mine: true },
      { type: 'fault' },
      { type: 'deliver' },
      { type: 'publish', mine: true },
      { type: 'deliver' },
    ]);
  });

  it('a message at or before the snapshot position is never applied, one after it always is', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 60 }), (at, offset) => {
        const sync = new ResourceSync<number[]>('run', '1', (data, _m, meta) => [...data, meta.offset]);
        const token = sync.begin();
        const message = { type: 'test_completed' } as DeliveredDataMessage;
        sync.message(message, { sequence: 1, type: 'test_completed', epoch: 'e', offset });
        sync.snapshot(token, { kind: 'run', resource_id: '1', data: [], epoch: 'e', offset: at });
        sync.message(message, { sequence: 2, type: 'test_completed', epoch: 'e', offset });
        expect(sync.data).toEqual(offset > at ? [offset] : []);
      }),
    );
  });
});
