import { describe, expect, it } from 'vitest';
import { REPLAY_PAGES_PER_TURN, replayTurn } from '../replay-turns.js';

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
