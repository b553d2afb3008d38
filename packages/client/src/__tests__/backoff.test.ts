import { afterEach, describe, expect, it, vi } from 'vitest';
import { ATPWebSocket, reconnectDelay } from '../index.js';
import { fakeWebSocket } from './fake-socket.js';

const guide = {
  reconnectInterval: 1000,
  maxReconnectInterval: 30000,
  reconnectDecay: 1.5,
  jitter: 0,
} as const;

describe('reconnectDelay', () => {
  it('grows 1000, 1500, 2250, … by reconnectDecay and caps at maxReconnectInterval', () => {
    const delays = Array.from({ length: 12 }, (_, i) => reconnectDelay(i + 1, guide));
    expect(delays.slice(0, 6)).toEqual([1000, 1500, 2250, 3375, 5063, 7594]);
    expect(delays.at(-1)).toBe(30000);
    expect(Math.max(...delays)).toBe(30000);
    expect(reconnectDelay(1000, guide)).toBe(30000);
  });

  it('keeps a ±r jitter within [delay·(1−r), delay·(1+r)] and never above the cap', () => {
    const options = { ...guide, jitter: 0.2 };
    expect(reconnectDelay(1, options, () => 0)).toBe(800);
    expect(reconnectDelay(1, options, () => 0.999999)).toBe(1200);
    expect(reconnectDelay(2, options, () => 0.5)).toBe(1500);
    for (let attempt = 1; attempt < 20; attempt += 1) {
      const base = reconnectDelay(attempt, guide);
      for (const r of [0, 0.25, 0.5, 0.75, 0.9999]) {
        const delay = reconnectDelay(attempt, options, () => r);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(delay).toBeLessThanOrEqual(Math.min(30000, Math.ceil(base * 1.2)));
      }
    }
  });

  it("spreads a 'full' jitter over [0, delay]", () => {
    const options = { ...guide, jitter: 'full' } as const;
    expect(reconnectDelay(3, options, () => 0)).toBe(0);
    expect(reconnectDelay(3, options, () => 0.5)).toBe(1125);
    expect(reconnectDelay(3, options, () => 0.999999)).toBe(2250);
  });
});

describe('reconnect schedule of ATPWebSocket (fake timers)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits 1000, 1500, 2250 ms between attempts with the default options and jitter 0', async () => {
    vi.useFakeTimers();
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({ url: 'ws://test/api/ws/updates', WebSocket: fake.WebSocket, jitter: 0 });
    const delays: number[] = [];
    ws.on('reconnecting', ({ delay }) => delays.push(delay));
    void ws.connect();
    expect(fake.sockets).toHaveLength(1);
    for (const expected of [1000, 1500, 2250, 3375]) {
      fake.last().drop();
      const before = fake.sockets.length;
      await vi.advanceTimersByTimeAsync(expected - 1);
      expect(fake.sockets).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(fake.sockets).toHaveLength(before + 1);
    }
    expect(delays).toEqual([1000, 1500, 2250, 3375]);
    ws.disconnect();
  });

  it('caps the wait at maxReconnectInterval and resets the backoff after a connection that stayed up minUptime', async () => {
    vi.useFakeTimers();
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({
      url: 'ws://test/x',
      WebSocket: fake.WebSocket,
      jitter: 0,
      maxReconnectInterval: 3000,
    });
    const delays: number[] = [];
    ws.on('reconnecting', ({ delay }) => delays.push(delay));
    void ws.connect();
    for (let i = 0; i < 5; i += 1) {
      fake.last().drop();
      await vi.advanceTimersByTimeAsync(3000);
    }
    expect(delays).toEqual([1000, 1500, 2250, 3000, 3000]);
    fake.last().accept();
    fake.last().drop();
    // Closed right after connected: the backoff keeps growing.
    expect(delays.at(-1)).toBe(3000);
    await vi.advanceTimersByTimeAsync(3000);
    fake.last().accept();
    await vi.advanceTimersByTimeAsync(5000);
    fake.last().drop();
    expect(delays.at(-1)).toBe(1000);
    ws.disconnect();
  });

  it('keeps jittered waits within ±20% by default', async () => {
    vi.useFakeTimers();
    const fake = fakeWebSocket();
    const ws = new ATPWebSocket({ url: 'ws://test/x', WebSocket: fake.WebSocket });
    const delays: number[] = [];
    ws.on('reconnecting', ({ delay }) => delays.push(delay));
    void ws.connect();
    for (let i = 0; i < 8; i += 1) {
      fake.last().drop();
      await vi.advanceTimersByTimeAsync(30000);
    }
    delays.forEach((delay, i) => {
      const base = Math.min(30000, 1000 * 1.5 ** i);
      expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
      expect(delay).toBeLessThanOrEqual(Math.min(30000, Math.ceil(base * 1.2)));
    });
    ws.disconnect();
  });

  it('uses retryDelay when given', async () => {
    vi.useFakeTimers();
    const fake = fakeWebSocket();
    const retryDelay = vi.fn((attempt: number) => attempt * 7);
    const ws = new ATPWebSocket({ url: 'ws://test/x', WebSocket: fake.WebSocket, retryDelay });
    void ws.connect();
    fake.last().drop();
    await vi.advanceTimersByTimeAsync(7);
    fake.last().drop();
    await vi.advanceTimersByTimeAsync(14);
    expect(retryDelay.mock.calls.map(([attempt]) => attempt)).toEqual([1, 2]);
    expect(fake.sockets).toHaveLength(3);
    ws.disconnect();
  });
});
