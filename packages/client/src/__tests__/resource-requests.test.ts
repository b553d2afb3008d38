// How `get_resource` requests go out: paced under the server's rate limit, sent again when the
// server may have dropped them, shared while unsent, abortable. The peer is scripted (it drops
// frames the way a rate-limited server does) and the clock is fake.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ATPWebSocket, type ATPWebSocketError, requestResource } from '../index.js';
import { type FakeSocket, fakeWebSocket } from './fake-socket.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function connected(): { ws: ATPWebSocket; socket: FakeSocket } {
  const fake = fakeWebSocket();
  const ws = new ATPWebSocket({
    url: 'ws://test/api/ws/updates',
    WebSocket: fake.WebSocket,
    pingInterval: 0,
  });
  ws.on('error', () => {});
  void ws.connect();
  const socket = fake.last();
  socket.accept();
  return { ws, socket };
}

const requests = (socket: FakeSocket) =>
  socket.sentOf('get_resource') as unknown as Array<{
    id: string;
    payload: { kind: string; resource_id: string };
  }>;

function answer(socket: FakeSocket, request: { id: string; payload: { kind: string; resource_id: string } }) {
  const { kind, resource_id } = request.payload;
  socket.receive({
    type: 'resource',
    id: request.id,
    payload: { kind, resource_id, data: { answered: request.id }, epoch: 'e1', offset: 0 },
  });
}

describe('get_resource requests', () => {
  it('a request the server dropped without saying so is sent again, with the same id, until answered', async () => {
    const { ws, socket } = connected();
    const snapshot = requestResource(ws, 'run', '1');
    expect(requests(socket)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(14_000);
    expect(requests(socket)).toHaveLength(1); // a slow provider is given its time
    await vi.advanceTimersByTimeAsync(2_100);
    expect(requests(socket)).toHaveLength(2);
    const [first, second] = requests(socket);
    expect(second?.id).toBe(first?.id);
    // The next wait is longer: a provider slower than the first wait is not asked ever more often.
    await vi.advanceTimersByTimeAsync(20_000);
    expect(requests(socket)).toHaveLength(2);
    if (second) answer(socket, second);
    await expect(snapshot).resolves.toMatchObject({ data: { answered: first?.id } });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(requests(socket)).toHaveLength(2);
    ws.disconnect();
  });

  it('a rate_limited notice (frames dropped, which unknown) sends every unanswered request again, slower', async () => {
    const { ws, socket } = connected();
    const snapshots = ['1', '2', '3'].map((id) => requestResource(ws, 'run', id));
    expect(requests(socket)).toHaveLength(3);
    const [answered] = requests(socket);
    if (answered) answer(socket, answered);
    socket.receive({
      type: 'error',
      payload: { code: 'rate_limited', message: 'messages are being dropped' },
    });
    await vi.advanceTimersByTimeAsync(900);
    expect(requests(socket)).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(2_000);
    const again = requests(socket).slice(3);
    expect(again.map((r) => r.payload.resource_id).sort()).toEqual(['2', '3']);
    for (const request of again) answer(socket, request);
    await expect(Promise.all(snapshots)).resolves.toHaveLength(3);
    ws.disconnect();
  });

  it('a rate_limited answer naming the request (the server queue was full) sends that one again', async () => {
    const { ws, socket } = connected();
    const snapshot = requestResource(ws, 'run', '1');
    const [request] = requests(socket);
    socket.receive({
      type: 'error',
      id: request?.id,
      payload: { code: 'rate_limited', message: 'queue full' },
    });
    await vi.advanceTimersByTimeAsync(2_100);
    expect(requests(socket)).toHaveLength(2);
    const again = requests(socket)[1];
    if (again) answer(socket, again);
    await expect(snapshot).resolves.toMatchObject({ kind: 'run', resource_id: '1' });
    ws.disconnect();
  });

  it('a burst of requests is paced under the server rate limit: 50 at once, then about 25 a second', async () => {
    const { ws, socket } = connected();
    const snapshots = Array.from({ length: 200 }, (_, n) => requestResource(ws, 'run', String(n)));
    const answered = new Set<string>();
    /** Answers every request sent and not yet answered, as a fast server would. */
    const serve = async () => {
      for (const request of requests(socket)) {
        if (answered.has(request.id)) continue;
        answered.add(request.id);
        answer(socket, request);
      }
      await vi.advanceTimersByTimeAsync(0);
    };
    for (let n = 0; n < 3; n++) await serve();
    expect(requests(socket)).toHaveLength(50);
    for (let tick = 0; tick < 10; tick++) {
      await vi.advanceTimersByTimeAsync(100);
      await serve();
    }
    expect(requests(socket).length).toBeGreaterThanOrEqual(74);
    expect(requests(socket).length).toBeLessThanOrEqual(76);
    for (let tick = 0; tick < 70; tick++) {
      await vi.advanceTimersByTimeAsync(100);
      await serve();
    }
    const all = await Promise.all(snapshots);
    expect(new Set(all.map((s) => s.resource_id)).size).toBe(200);
    expect(requests(socket)).toHaveLength(200);
    ws.disconnect();
  });

  it('never has more than 32 requests unanswered', async () => {
    const { ws, socket } = connected();
    const snapshots = Array.from({ length: 50 }, (_, n) => requestResource(ws, 'run', String(n)));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(requests(socket)).toHaveLength(32);
    const [first] = requests(socket);
    if (first) answer(socket, first);
    await vi.advanceTimersByTimeAsync(0);
    expect(requests(socket)).toHaveLength(33);
    ws.disconnect();
    await Promise.allSettled(snapshots);
  });

  it('fetches of one resource asked for before its request is sent share it', async () => {
    const { ws, socket } = connected();
    const isRun7 = (r: { payload: { kind: string; resource_id: string } }) =>
      r.payload.kind === 'run' && r.payload.resource_id === '7';
    const fillers = Array.from({ length: 50 }, (_, n) => requestResource(ws, 'filler', String(n)));
    const a = requestResource(ws, 'run', '7');
    const b = requestResource(ws, 'run', '7');
    expect(requests(socket).filter(isRun7)).toHaveLength(0);
    for (const filler of requests(socket)) answer(socket, filler);
    await vi.advanceTimersByTimeAsync(1_000);
    const sevens = requests(socket).filter(isRun7);
    expect(sevens).toHaveLength(1);
    if (sevens[0]) answer(socket, sevens[0]);
    const [snapshotA, snapshotB] = await Promise.all([a, b]);
    expect(snapshotB).toBe(snapshotA);
    // One asked for after the request went out gets a request of its own (it may have subscribed since).
    const c = requestResource(ws, 'run', '7');
    expect(requests(socket).filter(isRun7)).toHaveLength(2);
    ws.disconnect();
    await Promise.allSettled([...fillers, c]);
  });

  it('an aborted fetch rejects with aborted; its request, unshared, is not sent again', async () => {
    const { ws, socket } = connected();
    const controller = new AbortController();
    const snapshot = requestResource(ws, 'run', '1', { signal: controller.signal });
    controller.abort();
    await expect(snapshot).rejects.toMatchObject({ code: 'aborted' } satisfies Partial<ATPWebSocketError>);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(requests(socket)).toHaveLength(1);
    ws.disconnect();
  });

  it('the connection dropping rejects every unanswered request with disconnected', async () => {
    const { ws, socket } = connected();
    const snapshots = Array.from({ length: 40 }, (_, n) => requestResource(ws, 'run', String(n)));
    socket.drop();
    const results = await Promise.allSettled(snapshots);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as ATPWebSocketError).code)).toEqual(
      Array(40).fill('disconnected'),
    );
    ws.disconnect();
  });
});
