import type { DeliveredHistory as Full } from './history.js';

/**
 * The IIFE browser build's stand-in for {@link Full}: keeps no history and routes nothing,
 * to stay within its size budget. Per-subscription `message` events and the local replay of
 * history to a second subscriber are in the ESM/CJS builds only.
 */
// `observeEpoch`, `redeliver`, `deliveredBefore` and `complete` are only called behind `FULL`, which the IIFE drops.
export class DeliveredHistory
  implements Pick<Full, Exclude<keyof Full, 'observeEpoch' | 'redeliver' | 'deliveredBefore' | 'complete'>>
{
  attach(): void {}
  deliver(): void {}
  complete(): void {}
  clear(): void {}
}
