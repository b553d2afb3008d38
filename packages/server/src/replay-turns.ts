import { writeDueNow } from './write-scheduler.js';

/**
 * How replays share the event loop with live fan-out.
 *
 * Pages of history replays may read in one turn of the event loop, all
 * connections together: a page (1,000 entries) costs a millisecond or two, so
 * live fan-out waits at most a few milliseconds behind replays, however many
 * dashboards join at once. Replays take turns in arrival order.
 */
export const REPLAY_PAGES_PER_TURN = 2;

/**
 * Time all replays together may spend sending in one turn of the event loop,
 * in milliseconds: past it, a replay waits for its next turn
 * ({@link replayTurn}) even in the middle of a page, so a live message
 * published meanwhile waits about this long, not a whole page's worth.
 */
export const REPLAY_SLICE_MS = 1;

/** Entries a replay sends between two looks at the clock ({@link replaySliceSpent}). */
export const REPLAY_SLICE_CHECK_EVERY = 64;

const waiting: Array<() => void> = [];
let scheduled = false;

function letThrough(): void {
  // Live frames due by now go out before the replays' slice, not after it.
  writeDueNow();
  startSlice();
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

/** When the replays' slice of this turn of the event loop began; undefined until one sends. */
let sliceStartedAt: number | undefined;
let sliceEnding = false;

function endSlice(): void {
  sliceStartedAt = undefined;
  sliceEnding = false;
}

/** A fresh slice: each release of replays by {@link replayTurn} gets one, so a replay let through can send. */
function startSlice(): void {
  sliceStartedAt = performance.now();
  if (!sliceEnding) {
    sliceEnding = true;
    setImmediate(endSlice);
  }
}

/**
 * Whether the replays of this turn of the event loop have used up
 * {@link REPLAY_SLICE_MS}. Replays let through by {@link replayTurn} start a
 * fresh slice; otherwise the first call of a turn does.
 */
export function replaySliceSpent(): boolean {
  if (sliceStartedAt === undefined) {
    startSlice();
    return false;
  }
  return performance.now() - sliceStartedAt >= REPLAY_SLICE_MS;
}
