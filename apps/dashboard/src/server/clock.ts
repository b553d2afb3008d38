/** Time as the simulated runner sees it: what time it is, and how to wait. */
export interface Clock {
  /** Milliseconds since the Unix epoch, in simulated time. */
  now(): number;
  /** Resolves after `ms` of simulated time, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * A clock that runs `speed` times faster than the wall clock: sleeps are
 * shortened by `speed` and `now()` advances `speed` times as fast from the
 * moment it was created, so the timestamps and durations the runner reports
 * stay realistic while a test runs a whole suite in milliseconds.
 *
 * @example
 * const clock = scaledClock(1000); // a 2-minute suite in about 120 ms
 */
export function scaledClock(speed = 1): Clock {
  if (!(speed > 0) || !Number.isFinite(speed)) {
    throw new RangeError(`speed must be a finite number > 0, got ${speed}`);
  }
  const startedAt = Date.now();
  const startedPerf = performance.now();
  return {
    now: () => startedAt + (performance.now() - startedPerf) * speed,
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, ms / speed));
        signal?.addEventListener('abort', done, { once: true });
      }),
  };
}
