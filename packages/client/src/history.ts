import { type DataMessage, matchesSubscription, type ReplayFrom, type Subscription } from '@atp/ws-protocol';
import type { Delivery } from './subscriptions.js';

/** How many delivered messages the client keeps to replay history locally. */
export const HISTORY_SIZE = 10_000;

/**
 * The last {@link HISTORY_SIZE} data messages this client delivered in the current epoch, by
 * stream offset. The server sends a connection each message at most once, so a second
 * subscriber asking for history gets what this client already received from here.
 * The IIFE browser build replaces it with `history.browser.ts`, which keeps nothing and
 * matches nothing: per-subscription `message` events and the local replay are ESM/CJS-only.
 */
export class DeliveredHistory {
  #byOffset = new Map<number, Delivery>();
  #epoch = '';

  /** Keeps one delivered message (a new epoch forgets the old one's). */
  remember(delivery: Delivery): void {
    const { epoch, offset } = delivery.meta;
    if (epoch !== this.#epoch) {
      this.#byOffset.clear();
      this.#epoch = epoch;
    }
    this.#byOffset.set(offset, delivery);
    if (this.#byOffset.size > HISTORY_SIZE)
      this.#byOffset.delete(this.#byOffset.keys().next().value as number);
  }

  /** The kept messages after `from` (all for `'start'` or a position of another epoch), oldest first. */
  after(from: ReplayFrom): Delivery[] {
    const floor = from !== 'start' && from.epoch === this.#epoch ? from.offset : 0;
    return [...this.#byOffset.values()]
      .filter((d) => d.meta.offset > floor)
      .sort((a, b) => a.meta.offset - b.meta.offset);
  }

  /** Whether a data message belongs to a subscription (per-subscription delivery). */
  matches(message: DataMessage, subscription: Subscription): boolean {
    return matchesSubscription(message, subscription);
  }

  /** Forgets everything (a fresh session). */
  clear(): void {
    this.#byOffset.clear();
  }
}
