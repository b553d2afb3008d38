import { describe, expect, it } from 'vitest';
import { ATPWebSocket, type MessageMeta, type SequenceGapEvent } from '../index.js';
import { DEDUPE_WINDOW, SessionTracker } from '../resume.js';
import { fakeWebSocket } from './fake-socket.js';

function setup() {
  const fake = fakeWebSocket();
  const ws = new ATPWebSocket({
    url: 'ws://test/x',
    WebSocket: fake.WebSocket,
    pingInterval: 0,
    retryDelay: () => 0,
  });
  const delivered: MessageMeta[] = [];
  const gaps: SequenceGapEvent[] = [];
  ws.on('test_progress', (_payload, meta) => delivered.push(meta));
  ws.on('sequence_gap', (gap) => gaps.push(gap));
  ws.subscribe('test:progress');
  void ws.connect();
  fake.last().accept({ epoch: 'e1', offset: 0 });
  return { ws, fake, delivered, gaps, sequences: () => delivered.map((m) => m.sequence) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('sequence handling', () => {
  it('delivers payload and meta { sequence, type, epoch, offset } to typed handlers and `message`', () => {
    const { ws, fake } = setup();
    const seen: unknown[] = [];
    ws.on('message', (message, meta) => seen.push([message.type, meta]));
    ws.on('test_progress', (payload, meta) => seen.push([payload, meta.sequence, meta.type]));
    fake.last().data(1, 7, { progress_percent: 50 });
    expect(seen).toEqual([
      [{ progress_percent: 50 }, 1, 'test_progress'],
      ['test_progress', { sequence: 1, type: 'test_progress', epoch: 'e1', offset: 7 }],
    ]);
    ws.disconnect();
  });

  it('drops a data message whose sequence was already delivered, silently', () => {
    const { ws, fake, sequences, gaps } = setup();
    const socket = fake.last();
    for (const sequence of [1, 2, 2, 1, 3, 3]) socket.data(sequence, sequence);
    expect(sequences()).toEqual([1, 2, 3]);
    expect(gaps).toEqual([]);
    ws.disconnect();
  });

  it('reports a hole in the sequence as sequence_gap { expected, received, reason: sequence_hole }', () => {
    const { ws, fake, sequences, gaps } = setup();
    const socket = fake.last();
    socket.data(1, 1);
    socket.data(4, 4);
    socket.data(5, 5);
    expect(sequences()).toEqual([1, 4, 5]);
    expect(gaps).toEqual([{ expected: 2, received: 4, reason: 'sequence_hole' }]);
    ws.disconnect();
  });

  it('reports a resume that could not recover once, and continues without a second gap', async () => {
    const { ws, fake, sequences, gaps } = setup();
    fake.last().data(1, 1);
    fake.last().data(2, 2);
    fake.last().drop(1001, 'going away');
    await tick();
    const socket = fake.last();
    socket.accept({ epoch: 'e2', offset: 0 });
    expect(socket.sent[0]).toMatchObject({
      type: 'resume',
      payload: { epoch: 'e1', offset: 2, sequence: 2 },
    });
    socket.receive({
      type: 'resumed',
      id: socket.sent[0]?.id,
      payload: {
        recovered: false,
        next_sequence: 4,
        replayed: 0,
        complete: false,
        reason: 'epoch_changed',
        epoch: 'e2',
        offset: 0,
      },
    });
    socket.data(4, 1, {}, 'test_progress', 'e2');
    socket.data(5, 2, {}, 'test_progress', 'e2');
    expect(gaps).toEqual([{ expected: 3, received: 4, reason: 'epoch_changed' }]);
    expect(sequences()).toEqual([1, 2, 4, 5]);
    ws.disconnect();
  });

  it('continues the numbering across a recovered resume with no gap and no duplicates', async () => {
    const { ws, fake, sequences, gaps } = setup();
    fake.last().data(1, 1);
    fake.last().drop();
    await tick();
    const socket = fake.last();
    socket.accept({ epoch: 'e1', offset: 3 });
    socket.receive({
      type: 'resumed',
      id: socket.sent[0]?.id,
      payload: { recovered: true, next_sequence: 2, replayed: 2, complete: true, epoch: 'e1', offset: 3 },
    });
    socket.data(1, 1);
    socket.data(2, 2);
    socket.data(3, 3);
    expect(sequences()).toEqual([1, 2, 3]);
    expect(gaps).toEqual([]);
    ws.disconnect();
  });

  it('resumes from the last data position, not from a pong that arrived during the replay', async () => {
    const { ws, fake } = setup();
    fake.last().data(1, 5);
    fake.last().drop();
    await tick();
    let socket = fake.last();
    socket.accept({ epoch: 'e1', offset: 50 });
    socket.receive({
      type: 'resumed',
      payload: { recovered: true, next_sequence: 2, replayed: 3, complete: true, epoch: 'e1', offset: 50 },
    });
    socket.data(2, 6);
    socket.receive({ type: 'pong', payload: { epoch: 'e1', offset: 50 } });
    socket.drop();
    await tick();
    socket = fake.last();
    socket.accept({ epoch: 'e1', offset: 60 });
    expect(socket.sent[0]).toMatchObject({ type: 'resume', payload: { offset: 6, sequence: 2 } });
    ws.disconnect();
  });

  it('resumes even without subscriptions, so the numbering continues', async () => {
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      pingInterval: 0,
      retryDelay: () => 0,
    });
    void ws.connect();
    fake.last().accept({ epoch: 'e1', offset: 4 });
    fake.last().drop();
    await tick();
    fake.last().accept({ epoch: 'e1', offset: 9 });
    expect(fake.last().sent).toEqual([
      {
        type: 'resume',
        id: expect.any(Number),
        payload: { epoch: 'e1', offset: 4, sequence: 0, subscriptions: [] },
      },
    ]);
    ws.disconnect();
  });

  it('falls back to fresh subscribes and reports a gap when the server refuses the resume', async () => {
    const { ws, fake, sequences, gaps } = setup();
    fake.last().data(1, 1);
    fake.last().drop();
    await tick();
    const socket = fake.last();
    const errors: string[] = [];
    ws.on('error', ({ error }) => errors.push(`${error.code}/${error.serverCode}`));
    socket.accept({ epoch: 'e1', offset: 9 });
    socket.receive({ type: 'error', id: socket.sent[0]?.id, payload: { code: 'forbidden', message: 'no' } });
    expect(socket.sent.map((m) => m.type)).toEqual(['resume', 'subscribe']);
    socket.data(1, 10);
    expect(errors).toEqual(['server_error/forbidden']);
    expect(gaps).toEqual([{ expected: 2, received: 3, reason: 'unknown_position' }]);
    expect(sequences()).toEqual([1, 3]);
    ws.disconnect();
  });

  it('starts a fresh session after disconnect() then connect(): sequence from 1, no resume', () => {
    const { ws, fake, sequences } = setup();
    fake.last().data(1, 1);
    fake.last().data(2, 2);
    ws.disconnect();
    void ws.connect();
    fake.last().accept({ epoch: 'e1', offset: 2 });
    expect(fake.last().sent.map((m) => m.type)).toEqual(['subscribe']);
    fake.last().data(1, 3);
    expect(sequences()).toEqual([1, 2, 1]);
    expect(ws.lastSequence).toBe(1);
    ws.disconnect();
  });

  it('reports incomplete history of a `from` subscription as a gap naming the subscription', () => {
    const { ws, fake, gaps } = setup();
    fake.last().receive({
      type: 'subscribed',
      payload: {
        topic: 'logs',
        filter: {},
        history: { replayed: 0, complete: false, reason: 'history_truncated' },
        epoch: 'e1',
        offset: 0,
      },
    });
    expect(gaps).toEqual([
      { expected: 1, received: 1, reason: 'history_truncated', subscription: { topic: 'logs', filter: {} } },
    ]);
    ws.disconnect();
  });
});

describe('SessionTracker', () => {
  it('never moves the position back within an epoch, and follows a new epoch', () => {
    const session = new SessionTracker();
    session.observePosition({ epoch: 'a', offset: 10 });
    session.observePosition({ epoch: 'a', offset: 4 });
    expect(session.resumePayload([])).toMatchObject({ epoch: 'a', offset: 10 });
    session.observePosition({ epoch: 'b', offset: 1 });
    expect(session.resumePayload([])).toMatchObject({ epoch: 'b', offset: 1 });
  });

  it('shifts a restarted server numbering past a one-number gap instead of dropping it as duplicates', () => {
    const session = new SessionTracker();
    session.observePosition({ epoch: 'a', offset: 0 });
    session.onData(1, { epoch: 'a', offset: 1 });
    session.onData(2, { epoch: 'a', offset: 2 });
    session.beginConnection();
    const gap = session.onResumed({
      recovered: true,
      next_sequence: 1,
      replayed: 0,
      complete: true,
      epoch: 'a',
      offset: 2,
    });
    expect(gap).toEqual({ expected: 3, received: 4, reason: 'sequence_hole' });
    expect(session.onData(1, { epoch: 'a', offset: 3 })).toEqual({ deliver: true, sequence: 4 });
  });

  it('ends a replay at a hole in the numbering: what follows is not counted as replayed', () => {
    const session = new SessionTracker();
    const entry = { resumeFrom: undefined } as unknown as Parameters<SessionTracker['expectReplay']>[1];
    session.expectReplay(5, entry);
    session.onData(1, { epoch: 'a', offset: 1 });
    session.onData(2, { epoch: 'a', offset: 2 });
    // Three of five arrived no more: the server skipped a number, and live messages follow.
    expect(session.onData(4, { epoch: 'a', offset: 90 })).toMatchObject({
      gap: { expected: 3, received: 4 },
    });
    session.onData(5, { epoch: 'a', offset: 91 });
    expect((entry as unknown as { resumeFrom: unknown }).resumeFrom).toEqual({ epoch: 'a', offset: 2 });
  });

  it('drops a message whose stream offset was already delivered under another sequence, consuming the sequence', () => {
    const session = new SessionTracker();
    expect(session.onData(1, { epoch: 'a', offset: 5 })).toEqual({ deliver: true, sequence: 1 });
    expect(session.onData(2, { epoch: 'a', offset: 6 })).toEqual({ deliver: true, sequence: 2 });
    expect(session.onData(3, { epoch: 'a', offset: 5 })).toEqual({ deliver: false, sequence: 3 });
    expect(session.onData(4, { epoch: 'a', offset: 7 })).toEqual({ deliver: true, sequence: 4 });
    expect(session.onData(5, { epoch: 'b', offset: 5 })).toEqual({ deliver: true, sequence: 5 });
  });
});

describe('the window of delivered offsets', () => {
  it('forgets the oldest offset once the window is full, and still drops the others', () => {
    const session = new SessionTracker();
    let sequence = 0;
    const deliver = (offset: number) => session.onData(++sequence, { epoch: 'e1', offset }).deliver;
    for (let offset = 1; offset <= DEDUPE_WINDOW + 1; offset += 1) expect(deliver(offset)).toBe(true);
    expect(deliver(1)).toBe(true);
    expect(deliver(3)).toBe(false);
    expect(deliver(DEDUPE_WINDOW + 1)).toBe(false);
  });
});
