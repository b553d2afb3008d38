import { canonicalSubscriptionKey, type Filter, normalizeFilter } from '@atp/ws-protocol';
import type { ReplayFrom } from '@atp/ws-protocol';

/** One distinct subscription (topic + normalised filter) and how many references hold it. */
export interface SubscriptionEntry {
  /** `canonicalSubscriptionKey(topic, filter)`. */
  readonly key: string;
  readonly topic: string;
  /** The normalised filter (`{}` when none). */
  readonly filter: Filter;
  /** How many `subscribe()` calls currently hold it. */
  refs: number;
  /** Where the first wire `subscribe` of the session asks the replay to start. */
  from: ReplayFrom | undefined;
  /** Whether the server has been asked for it in this session (then a reconnect restores it by `resume`). */
  sent: boolean;
  /** After a `from` replay cut short by a disconnect: the position of its last replayed message. */
  resumeFrom?: ReplayFrom;
  /** The server refused it as invalid (unknown topic, bad filter): it is not sent again. */
  refused?: boolean;
}

/** Result of {@link SubscriptionRegistry.add}. */
export interface AddResult {
  readonly entry: SubscriptionEntry;
  /** True when this is the first reference: the wire `subscribe` must be sent. */
  readonly created: boolean;
  /** Releases this one reference; returns the entry when it was the last one (send `unsubscribe`). */
  readonly release: () => SubscriptionEntry | undefined;
}

/**
 * The client's wanted subscriptions, reference-counted by
 * {@link canonicalSubscriptionKey} so that identical subscriptions from two
 * components share one wire subscription and one's cleanup does not cancel the other's.
 */
export class SubscriptionRegistry {
  readonly #entries = new Map<string, SubscriptionEntry>();

  /** Adds one reference to `topic` + `filter`. */
  add(topic: string, filter?: Filter, from?: ReplayFrom): AddResult {
    const key = canonicalSubscriptionKey(topic, filter);
    let entry = this.#entries.get(key);
    const created = entry === undefined;
    if (!entry) {
      entry = { key, topic, filter: normalizeFilter(filter), refs: 0, from, sent: false };
      this.#entries.set(key, entry);
    }
    entry.refs += 1;
    const held = entry;
    let released = false;
    const release = (): SubscriptionEntry | undefined => {
      // Idempotent, and a no-op once `unsubscribe()` removed the entry (even if it was re-created since).
      if (released || this.#entries.get(key) !== held) return undefined;
      released = true;
      held.refs -= 1;
      if (held.refs > 0) return undefined;
      this.#entries.delete(key);
      return held;
    };
    return { entry, created, release };
  }

  /** Removes every reference of `topic` (all its filters), or of exactly `topic` + `filter`. */
  remove(topic: string, filter?: Filter): SubscriptionEntry[] {
    if (filter !== undefined) {
      const key = canonicalSubscriptionKey(topic, filter);
      const entry = this.#entries.get(key);
      if (!entry) return [];
      this.#entries.delete(key);
      return [entry];
    }
    const removed = [...this.#entries.values()].filter((entry) => entry.topic === topic);
    for (const entry of removed) this.#entries.delete(entry.key);
    return removed;
  }

  /** Every wanted subscription, in the order they were first made. */
  list(): SubscriptionEntry[] {
    return [...this.#entries.values()];
  }

  /** Forgets which subscriptions were sent, for a fresh session (their `from` applies again). */
  resetSent(): void {
    for (const entry of this.#entries.values()) {
      entry.sent = false;
      entry.resumeFrom = undefined;
    }
  }
}
