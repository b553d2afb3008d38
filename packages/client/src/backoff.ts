/** How the reconnect delay grows and is randomised; see {@link reconnectDelay}. */
export interface BackoffOptions {
  /** Delay before the first retry, ms. */
  readonly reconnectInterval: number;
  /** Largest delay, ms, jitter included. */
  readonly maxReconnectInterval: number;
  /** Factor applied to the delay after each failed attempt. */
  readonly reconnectDecay: number;
  /**
   * `'full'`: a uniformly random delay between 0 and the computed one (AWS "full jitter");
   * a number `r` in [0, 1]: the computed delay times a random factor in [1 - r, 1 + r];
   * `0`: no jitter.
   */
  readonly jitter: number | 'full';
}

/**
 * The delay before reconnect attempt `attempt` (1 for the first retry):
 * `reconnectInterval * reconnectDecay ** (attempt - 1)`, capped at
 * `maxReconnectInterval`, then jittered and capped again.
 *
 * @param random returns a number in [0, 1), like `Math.random` (the default)
 * @example
 * const options = { reconnectInterval: 1000, maxReconnectInterval: 30000, reconnectDecay: 1.5, jitter: 0 };
 * [1, 2, 3].map((n) => reconnectDelay(n, options)); // [1000, 1500, 2250]
 */
export function reconnectDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const { reconnectInterval, maxReconnectInterval, reconnectDecay, jitter } = options;
  const base = Math.min(maxReconnectInterval, reconnectInterval * reconnectDecay ** Math.max(0, attempt - 1));
  let delay = base;
  if (jitter === 'full') delay = base * random();
  else if (jitter > 0) delay = base * (1 - jitter + 2 * jitter * random());
  return Math.max(0, Math.round(Math.min(maxReconnectInterval, delay)));
}
