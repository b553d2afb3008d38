import { describeTopic, type Filter, type FilterScalar, matchesFilter } from '@atp/ws-protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type IndexedSubscription, SubscriptionIndex } from '../subscription-index.js';

// The index must visit exactly the subscriptions a scan of all of them with
// matchesFilter would, once each, whatever the filters (the indexed key alone,
// with other keys, as an array, none) and after any removals.

const TOPICS = ['test:progress', 'events:*', 'logs', 'delta'] as const;
const scalar: fc.Arbitrary<FilterScalar> = fc.constantFrom<FilterScalar>(1, 2, 3, '1', 'a', 'error', 'info');
const value = fc.oneof(scalar, fc.uniqueArray(scalar, { minLength: 1, maxLength: 3 }));

const subscription = fc.constantFrom(...TOPICS).chain((topic) => {
  const keys = describeTopic(topic)?.filterKeys ?? [];
  return fc
    .dictionary(fc.constantFrom(...keys), value, { maxKeys: keys.length })
    .map((filter) => ({ topic, filter: filter as Filter }));
});

const payload = fc.record({
  suite_execution_id: fc.oneof(scalar, fc.constant(undefined)),
  test_id: scalar,
  event_type: scalar,
  level: scalar,
  resource_type: scalar,
});

describe('SubscriptionIndex', () => {
  it('visits exactly the matching subscriptions, once each, before and after removals', () => {
    fc.assert(
      fc.property(
        fc.array(subscription, { maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        fc.array(payload, { minLength: 1, maxLength: 5 }),
        (specs, removed, payloads) => {
          const index = new SubscriptionIndex<number>();
          const all: IndexedSubscription<number>[] = specs.map((spec, owner) => ({ owner, ...spec }));
          for (const s of all) index.add(s);
          const check = (live: IndexedSubscription<number>[]) => {
            for (const topic of TOPICS) {
              for (const p of payloads) {
                const visited: number[] = [];
                index.forEachMatch(topic, p, (s) => visited.push(s.owner));
                const expected = live.filter((s) => s.topic === topic && matchesFilter(p, s.filter));
                expect(visited.sort((a, b) => a - b)).toEqual(expected.map((s) => s.owner));
              }
            }
          };
          check(all);
          for (const s of all.filter((_, i) => removed[i])) index.remove(s);
          check(all.filter((_, i) => !removed[i]));
        },
      ),
      { numRuns: 300 },
    );
  });
});
