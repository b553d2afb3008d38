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
  byKey: Map<FilterKey, Map<FilterScalar, Bucket<C>>>;
}

/** The subscriptions filed under one value of a key. */
interface Bucket<C> {
  /** Filtering on that key alone: every message with that value matches, unchecked. */
  readonly exact: Set<IndexedSubscription<C>>;
  /** Filtering on other keys too: each message is checked against the whole filter. */
  readonly checked: Set<IndexedSubscription<C>>;
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
    const exact = isOnlyKey(subscription.filter, key);
    for (const value of this.#valuesOf(subscription, key)) {
      let bucket = values.get(value);
      if (!bucket) {
        bucket = { exact: new Set(), checked: new Set() };
        values.set(value, bucket);
      }
      (exact ? bucket.exact : bucket.checked).add(subscription);
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
        const bucket = values?.get(value);
        if (!bucket) continue;
        bucket.exact.delete(subscription);
        bucket.checked.delete(subscription);
        if (bucket.exact.size === 0 && bucket.checked.size === 0) values?.delete(value);
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
      const bucket = values.get(value);
      if (!bucket) continue;
      for (const subscription of bucket.exact) visit(subscription);
      for (const subscription of bucket.checked) {
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

/** Whether `key` is the only key `filter` sets. */
function isOnlyKey(filter: Filter, key: FilterKey): boolean {
  for (const other of Object.keys(filter) as FilterKey[]) {
    if (other !== key && filter[other] !== undefined) return false;
  }
  return true;
}
