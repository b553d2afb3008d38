/**
 * Pages of history replays may read in one turn of the event loop, all
 * connections together: a page (1,000 entries) costs a millisecond or two, so
 * live fan-out waits at most a few milliseconds behind replays, however many
 * dashboards join at once. Replays take turns in arrival order.
 */
export const REPLAY_PAGES_PER_TURN = 2;

const waiting: Array<() => void> = [];
let scheduled = false;

function letThrough(): void {
  for (const resolve of waiting.splice(0, REPLAY_PAGES_PER_TURN)) resolve();
  if (waiting.length > 0) setImmediate(letThrough);
  else scheduled = false;
}

/** Resolves in a later turn of the event loop, once this replay's page may be read. */
export function replayTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) {
      scheduled = true;
      setImmediate(letThrough);
    }
  });
}
