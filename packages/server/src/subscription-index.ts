import {
  describeTopic,
  type Filter,
  type FilterKey,
  type FilterScalar,
  matchesFilter,
} from '@atp/ws-protocol';

/** One subscription of one connection, as held by the index. */
export interface IndexedSubscription<C> {
  readonly owner: C;
  readonly topic: string;
  readonly filter: Filter;
}

interface TopicIndex<C> {
  /** Subscriptions without a value for any indexable key: candidates for every message. */
  unkeyed: Set<IndexedSubscription<C>>;
  /** key → value → subscriptions filtering on that key with that value (or any of an array). */
  byKey: Map<FilterKey, Map<FilterScalar, Set<IndexedSubscription<C>>>>;
}

/**
 * Finds the subscriptions a message matches without scanning every client:
 * each subscription is filed under its topic and under the value of the first
 * filter key its topic allows (e.g. `suite_execution_id`), so a publish to one
 * suite only looks at that suite's subscribers plus the unfiltered ones.
 */
export class SubscriptionIndex<C> {
  #topics = new Map<string, TopicIndex<C>>();

  add(subscription: IndexedSubscription<C>): void {
    let index = this.#topics.get(subscription.topic);
    if (!index) {
      index = { unkeyed: new Set(), byKey: new Map() };
      this.#topics.set(subscription.topic, index);
    }
    const key = this.#keyOf(subscription);
    if (!key) {
      index.unkeyed.add(subscription);
      return;
    }
    let values = index.byKey.get(key);
    if (!values) {
      values = new Map();
      index.byKey.set(key, values);
    }
    for (const value of this.#valuesOf(subscription, key)) {
      let set = values.get(value);
      if (!set) {
        set = new Set();
        values.set(value, set);
      }
      set.add(subscription);
    }
  }

  remove(subscription: IndexedSubscription<C>): void {
    const index = this.#topics.get(subscription.topic);
    if (!index) return;
    const key = this.#keyOf(subscription);
    if (!key) {
      index.unkeyed.delete(subscription);
    } else {
      const values = index.byKey.get(key);
      for (const value of this.#valuesOf(subscription, key)) {
        const set = values?.get(value);
        set?.delete(subscription);
        if (set?.size === 0) values?.delete(value);
      }
      if (values?.size === 0) index.byKey.delete(key);
    }
    if (index.unkeyed.size === 0 && index.byKey.size === 0) this.#topics.delete(subscription.topic);
  }

  /** Calls `visit` with every subscription on `topic` whose filter matches `payload`. */
  forEachMatch(topic: string, payload: object, visit: (subscription: IndexedSubscription<C>) => void): void {
    const index = this.#topics.get(topic);
    if (!index) return;
    for (const subscription of index.unkeyed) {
      if (matchesFilter(payload, subscription.filter)) visit(subscription);
    }
    for (const [key, values] of index.byKey) {
      const value = (payload as Record<string, unknown>)[key];
      if (typeof value !== 'number' && typeof value !== 'string') continue;
      const set = values.get(value);
      if (!set) continue;
      for (const subscription of set) {
        if (matchesFilter(payload, subscription.filter)) visit(subscription);
      }
    }
  }

  #keyOf(subscription: IndexedSubscription<C>): FilterKey | undefined {
    const definition = describeTopic(subscription.topic);
    return definition?.filterKeys.find((key) => subscription.filter[key] !== undefined);
  }

  #valuesOf(subscription: IndexedSubscription<C>, key: FilterKey): readonly FilterScalar[] {
    const value = subscription.filter[key];
    if (value === undefined) return [];
    return Array.isArray(value) ? (value as readonly FilterScalar[]) : [value as FilterScalar];
  }
}
