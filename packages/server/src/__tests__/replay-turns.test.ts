import { afterEach, describe, expect, it, vi } from 'vitest';
import { REPLAY_PAGES_PER_TURN, REPLAY_SLICE_MS, replaySliceSpent, replayTurn } from '../replay-turns.js';

describe('turns of the event loop shared by every replay', () => {
  it('lets at most REPLAY_PAGES_PER_TURN pages through per turn, in arrival order, whatever waits', async () => {
    let turn = 0;
    const ticking = setInterval(() => {}, 1000);
    const counter = () => {
      turn += 1;
      if (turn < 50) setImmediate(counter);
    };
    setImmediate(counter);
    const order: Array<[number, number]> = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, page) =>
        replayTurn().then(() => {
          order.push([page, turn]);
        }),
      ),
    );
    clearInterval(ticking);
    expect(order.map(([page]) => page)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const perTurn = new Map<number, number>();
    for (const [, at] of order) perTurn.set(at, (perTurn.get(at) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).toBe(REPLAY_PAGES_PER_TURN);
    expect(perTurn.size).toBe(Math.ceil(10 / REPLAY_PAGES_PER_TURN));
  });
});

/** Past the end of any slice started so far: two turns of the event loop later. */
async function nextTurn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

describe("the replays' slice of a turn of the event loop", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is spent once REPLAY_SLICE_MS has passed in one turn, and fresh in the next turn', async () => {
    let now = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    await nextTurn(); // a turn where nothing started a slice
    expect(replaySliceSpent()).toBe(false); // starts it
    now += REPLAY_SLICE_MS / 2;
    expect(replaySliceSpent()).toBe(false);
    now += REPLAY_SLICE_MS / 2;
    expect(replaySliceSpent()).toBe(true);
    now += 50;
    expect(replaySliceSpent()).toBe(true);
    await nextTurn();
    expect(replaySliceSpent()).toBe(false);
  });

  it('is fresh for a replay let through by replayTurn, even when the clock ran on meanwhile', async () => {
    let now = 5000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    await nextTurn();
    expect(replaySliceSpent()).toBe(false);
    now += 10 * REPLAY_SLICE_MS;
    expect(replaySliceSpent()).toBe(true);
    const seen: boolean[] = [];
    await replayTurn().then(() => {
      seen.push(replaySliceSpent());
      now += REPLAY_SLICE_MS;
      seen.push(replaySliceSpent());
    });
    expect(seen).toEqual([false, true]);
  });
});
