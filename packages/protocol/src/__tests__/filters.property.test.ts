import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalSubscriptionKey,
  type DataMessage,
  FILTER_KEYS,
  type Filter,
  type FilterKey,
  type FilterScalar,
  type FilterValue,
  matchesFilter,
  matchesSubscription,
  normalizeFilter,
  TOPICS,
  topicsForMessage,
} from '../index.js';

const filterKeys = Object.keys(FILTER_KEYS) as FilterKey[];

// A small domain, so that equal values, duplicates and matches are frequent.
// `1` and `'1'` are both in it: they are different values and must stay apart.
const scalar: fc.Arbitrary<FilterScalar> = fc.oneof(
  fc.constantFrom<FilterScalar>(0, 1, 2, 123, '1', 'a', 'b', 'info', 'tool_call', ''),
  fc.integer({ min: 0, max: 1_000_000 }),
  fc.string({ maxLength: 4 }),
);

/** A filter by its meaning: for each key, the set of accepted values. */
type FilterMeaning = Map<FilterKey, Set<FilterScalar>>;

const meaning: fc.Arbitrary<FilterMeaning> = fc
  .uniqueArray(fc.constantFrom(...filterKeys), { maxLength: filterKeys.length })
  .chain((keys) =>
    fc
      .tuple(...keys.map(() => fc.uniqueArray(scalar, { minLength: 1, maxLength: 4 })))
      .map((sets) => new Map(keys.map((key, i) => [key, new Set(sets[i])]))),
  );

/** One way of writing a filter of that meaning: any key order, any array order, duplicates, `x` or `[x]`. */
function spelling(filter: FilterMeaning): fc.Arbitrary<Filter> {
  const entries = [...filter].map(([key, values]) => {
    const list = [...values];
    const value: fc.Arbitrary<FilterValue> = fc
      .tuple(fc.shuffledSubarray(list, { minLength: list.length }), fc.subarray(list))
      .map(([all, repeated]) => [...all, ...repeated])
      .chain((items) => {
        const shuffled = fc.shuffledSubarray(items, { minLength: items.length });
        return list.length === 1 ? fc.oneof(fc.constant(list[0] as FilterScalar), shuffled) : shuffled;
      });
    return value.map((v) => [key, v] as const);
  });
  return fc
    .tuple(...entries)
    .chain((pairs) => fc.shuffledSubarray(pairs, { minLength: pairs.length }))
    .map((pairs) => Object.fromEntries(pairs) as Filter);
}

function sameMeaning(a: FilterMeaning, b: FilterMeaning): boolean {
  if (a.size !== b.size) return false;
  for (const [key, values] of a) {
    const other = b.get(key);
    if (!other || other.size !== values.size) return false;
    for (const value of values) if (!other.has(value)) return false;
  }
  return true;
}

function toFilter(filter: FilterMeaning): Filter {
  return Object.fromEntries([...filter].map(([key, values]) => [key, [...values]]));
}

/** Any filter, including empty arrays, duplicates, `undefined` values and keys in any order. */
const anyFilter: fc.Arbitrary<Filter> = fc.dictionary(
  fc.constantFrom(...filterKeys),
  fc.oneof(scalar, fc.array(scalar, { maxLength: 5 }), fc.constant(undefined)),
  { maxKeys: filterKeys.length },
) as fc.Arbitrary<Filter>;

/** A payload-like object: filter keys (sometimes absent) with values of any JSON kind, plus other fields. */
const payload: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.oneof(fc.constantFrom(...filterKeys), fc.constantFrom('message', 'status', 'progress_percent')),
  fc.oneof(scalar, fc.constantFrom(null, true, false, 1.5, -1), fc.constant([1])),
  { maxKeys: 8 },
);

/** The protocol's definition, written out plainly: every key's value equals the payload's field, or any of an array's. */
function referenceMatches(object: Record<string, unknown>, filter: Filter | undefined): boolean {
  return Object.entries(filter ?? {}).every(([key, wanted]) => {
    if (wanted === undefined) return true;
    if (!(key in object)) return false;
    const accepted: readonly unknown[] = Array.isArray(wanted) ? wanted : [wanted];
    return accepted.some((value) => value === object[key]);
  });
}

describe('canonicalSubscriptionKey', () => {
  it('is the same for every spelling of the same filter (key order, array order, duplicates, [x] or x)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(TOPICS), 'events:tool_call'),
        meaning.chain((m) => fc.tuple(spelling(m), spelling(m))),
        (topic, [a, b]) => {
          expect(canonicalSubscriptionKey(topic, a)).toBe(canonicalSubscriptionKey(topic, b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is the same without a filter and with an empty one', () => {
    for (const topic of Object.keys(TOPICS)) {
      expect(canonicalSubscriptionKey(topic)).toBe(canonicalSubscriptionKey(topic, {}));
    }
  });

  it('differs when the filters mean different things', () => {
    fc.assert(
      fc.property(meaning, meaning, (a, b) => {
        const same =
          canonicalSubscriptionKey('logs', toFilter(a)) === canonicalSubscriptionKey('logs', toFilter(b));
        expect(same).toBe(sameMeaning(a, b));
      }),
      { numRuns: 1000 },
    );
  });

  it('differs between an empty array (matches nothing) and no key (matches everything)', () => {
    expect(canonicalSubscriptionKey('logs', { level: [] })).not.toBe(canonicalSubscriptionKey('logs', {}));
  });

  it('differs between topics with the same filter', () => {
    fc.assert(
      fc.property(anyFilter, (filter) => {
        expect(canonicalSubscriptionKey('test:progress', filter)).not.toBe(
          canonicalSubscriptionKey('test:completed', filter),
        );
      }),
    );
  });
});

describe('normalizeFilter', () => {
  it('is idempotent', () => {
    fc.assert(
      fc.property(anyFilter, (filter) => {
        const once = normalizeFilter(filter);
        expect(normalizeFilter(once)).toStrictEqual(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('does not change what a filter matches', () => {
    fc.assert(
      fc.property(payload, anyFilter, (object, filter) => {
        expect(matchesFilter(object, normalizeFilter(filter))).toBe(matchesFilter(object, filter));
      }),
      { numRuns: 1000 },
    );
  });

  it('sorts keys, sorts and de-duplicates arrays and unwraps one-element arrays', () => {
    const normalized = normalizeFilter({
      test_id: ['b', 'a', 'b'],
      suite_execution_id: [7],
      level: undefined,
    });
    expect(normalized).toStrictEqual({ suite_execution_id: 7, test_id: ['a', 'b'] });
    expect(Object.keys(normalized)).toEqual(['suite_execution_id', 'test_id']);
  });
});

describe('matchesFilter', () => {
  it('agrees with the plain definition for random payloads and filters', () => {
    fc.assert(
      fc.property(payload, fc.option(anyFilter, { nil: undefined }), (object, filter) => {
        expect(matchesFilter(object, filter)).toBe(referenceMatches(object, filter));
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a payload built to satisfy the filter, and not after one key is changed to a value outside it', () => {
    fc.assert(
      fc.property(meaning, fc.nat(), (m, pick) => {
        const object: Record<string, unknown> = {};
        for (const [key, values] of m) object[key] = [...values][pick % values.size];
        expect(matchesFilter(object, toFilter(m))).toBe(true);
        const keys = [...m.keys()];
        if (keys.length === 0) return;
        const key = keys[pick % keys.length] as FilterKey;
        object[key] = { not: 'a scalar' };
        expect(matchesFilter(object, toFilter(m))).toBe(false);
      }),
    );
  });
});

const eventType = fc.constantFrom(
  'tool_call',
  'llm_request',
  'llm_response',
  'reasoning',
  'error',
  'progress',
);

const dataMessage: fc.Arbitrary<DataMessage> = fc.oneof(
  fc.record({
    type: fc.constant('test_progress' as const),
    payload: fc.record({
      suite_execution_id: fc.nat(3),
      test_execution_id: fc.nat(3),
      test_id: fc.constantFrom('a', 'b'),
      status: fc.constant('running' as const),
      progress_percent: fc.constant(50),
    }),
  }),
  fc.record({
    type: fc.constant('test_completed' as const),
    payload: fc.record({
      suite_execution_id: fc.nat(3),
      test_execution_id: fc.nat(3),
      test_id: fc.constantFrom('a', 'b'),
      success: fc.boolean(),
    }),
  }),
  fc.record({
    type: fc.constant('suite_progress' as const),
    payload: fc.record({
      suite_execution_id: fc.nat(3),
      status: fc.constant('running' as const),
      progress_percent: fc.constant(10),
      completed_tests: fc.constant(1),
      total_tests: fc.constant(2),
    }),
  }),
  fc.record({
    type: fc.constant('suite_completed' as const),
    payload: fc.record({
      suite_execution_id: fc.nat(3),
      success_rate: fc.constant(1),
      total_tests: fc.constant(1),
      passed_tests: fc.constant(1),
      failed_tests: fc.constant(0),
    }),
  }),
  fc.record(
    {
      type: fc.constant('log_entry' as const),
      payload: fc.record(
        {
          suite_execution_id: fc.nat(3),
          level: fc.constantFrom('debug', 'info', 'warning', 'error', 'critical' as const),
          message: fc.constant('m'),
          timestamp: fc.constant('2024-01-15T10:30:00Z'),
        },
        { requiredKeys: ['level', 'message', 'timestamp'] },
      ),
    },
    { requiredKeys: ['type', 'payload'] },
  ),
  fc.record({
    type: fc.constant('event' as const),
    payload: fc.record({
      suite_execution_id: fc.nat(3),
      event_type: eventType,
      timestamp: fc.constant('2024-01-15T10:30:05Z'),
      payload: fc.constant({}),
    }),
  }),
  fc.record({
    type: fc.constant('delta_update' as const),
    payload: fc.record({
      resource_type: fc.constantFrom('test_execution', 'suite_execution'),
      resource_id: fc.nat(3),
      sequence: fc.nat(),
      changes: fc.constant({}),
    }),
  }),
);

const topic = fc.oneof(
  fc.constantFrom(...Object.keys(TOPICS)),
  eventType.map((type) => `events:${type}`),
);

describe('matchesSubscription', () => {
  it('without a filter, matches exactly the messages whose topics include the subscribed one', () => {
    fc.assert(
      fc.property(dataMessage, topic, (message, subscribed) => {
        expect(matchesSubscription(message, { topic: subscribed })).toBe(
          topicsForMessage(message).includes(subscribed),
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('with a filter, matches when the topic does and the filter matches the payload', () => {
    const filter = fc.record(
      {
        suite_execution_id: fc.oneof(fc.nat(3), fc.uniqueArray(fc.nat(3), { minLength: 1, maxLength: 3 })),
        test_id: fc.constantFrom('a', 'b'),
        event_type: eventType,
        level: fc.constantFrom('info', 'error'),
        resource_type: fc.constantFrom('test_execution', 'suite_execution'),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(dataMessage, topic, filter, (message, subscribed, f) => {
        const expected =
          topicsForMessage(message).includes(subscribed) && referenceMatches(message.payload, f as Filter);
        expect(matchesSubscription(message, { topic: subscribed, filter: f as Filter })).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});
