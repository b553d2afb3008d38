import type { DataMessage } from './messages.js';
import { describeTopic, FILTER_KEYS, type FilterKey, LOG_LEVELS, isEventTypeName } from './topics.js';

/** A single filter value: an integer id or a string. */
export type FilterScalar = number | string;

/** One filter value: the field must equal it, or be any of the array's values. */
export type FilterValue = FilterScalar | readonly FilterScalar[];

/** A subscription filter: every key must match the payload field of that name. */
export type Filter = Readonly<Partial<Record<FilterKey, FilterValue>>>;

/** A topic plus an optional filter. */
export interface Subscription {
  readonly topic: string;
  readonly filter?: Filter;
}

/** Result of {@link validateFilter}. */
export type FilterValidation = { ok: true; filter: Filter } | { ok: false; message: string };

/** Most values one array filter value may list. */
export const MAX_FILTER_VALUES = 100;

function checkScalar(key: FilterKey, value: unknown): string | undefined {
  switch (FILTER_KEYS[key]) {
    case 'integer':
      return Number.isSafeInteger(value) && (value as number) >= 0 ? undefined : 'a non-negative integer';
    case 'string':
      return typeof value === 'string' && value.length > 0 && value.length <= 256
        ? undefined
        : 'a non-empty string';
    case 'name':
      return typeof value === 'string' && isEventTypeName(value)
        ? undefined
        : 'a name of 1 to 64 letters, digits, "_", "." or "-"';
    case 'level':
      return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value)
        ? undefined
        : `one of ${LOG_LEVELS.join(', ')}`;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}

/**
 * Checks a filter received on the wire against a topic's allowed keys and value
 * types and returns it normalised (see {@link normalizeFilter}), or a message a
 * person can act on. The topic must already be known to exist.
 *
 * @example
 * validateFilter('test:progress', { suite_id: 1 });
 * // { ok: false, message: "filter key 'suite_id' is not allowed on topic 'test:progress'; allowed: suite_execution_id, test_id" }
 */
export function validateFilter(topic: string, filter: unknown): FilterValidation {
  const definition = describeTopic(topic);
  if (!definition) return { ok: false, message: `unknown topic '${topic}'` };
  if (filter === undefined || filter === null) return { ok: true, filter: {} };
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    return { ok: false, message: `filter must be an object, got ${describeValue(filter)}` };
  }
  const allowed = definition.filterKeys as readonly string[];
  const out: Record<string, FilterValue> = {};
  for (const key of Object.keys(filter)) {
    if (!allowed.includes(key)) {
      return {
        ok: false,
        message: `filter key '${key}' is not allowed on topic '${topic}'; allowed: ${allowed.join(', ') || '(none)'}`,
      };
    }
    const value: unknown = (filter as Record<string, unknown>)[key];
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0) return { ok: false, message: `filter '${key}' must not be an empty array` };
    if (values.length > MAX_FILTER_VALUES) {
      return { ok: false, message: `filter '${key}' lists more than ${MAX_FILTER_VALUES} values` };
    }
    for (const item of values) {
      const expected = checkScalar(key as FilterKey, item);
      if (expected) {
        return {
          ok: false,
          message: `filter '${key}' must be ${expected} (or an array of them), got ${describeValue(item)}`,
        };
      }
    }
    out[key] = value as FilterValue;
  }
  return { ok: true, filter: normalizeFilter(out) };
}

function compareScalars(a: FilterScalar, b: FilterScalar): number {
  if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
  return typeof a === 'number' ? -1 : 1;
}

/**
 * The filter with its keys sorted, array values sorted and de-duplicated, and
 * one-element arrays reduced to their value, so that equal filters are equal objects.
 */
export function normalizeFilter(filter: Filter | undefined): Filter {
  const out: Record<string, FilterValue> = {};
  if (!filter) return out;
  for (const key of Object.keys(filter).sort()) {
    const value = filter[key as FilterKey];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      const unique = [...new Set(value as FilterScalar[])].sort(compareScalars);
      out[key] = unique.length === 1 ? (unique[0] as FilterScalar) : unique;
    } else {
      out[key] = value as FilterScalar;
    }
  }
  return out;
}

/**
 * A string that is the same for every spelling of the same subscription:
 * `{a:1,b:2}` and `{b:2,a:1}`, `[2,1]` and `[1,2]`, `[1]` and `1`, no filter and `{}`.
 */
export function canonicalSubscriptionKey(topic: string, filter?: Filter): string {
  return `${topic}|${JSON.stringify(normalizeFilter(filter))}`;
}

/** Whether a payload satisfies every key of a filter (an absent or empty filter matches everything). */
export function matchesFilter(payload: object, filter: Filter | undefined): boolean {
  if (!filter) return true;
  for (const key of Object.keys(filter)) {
    const wanted = filter[key as FilterKey];
    if (wanted === undefined) continue;
    const actual: unknown = Object.hasOwn(payload, key)
      ? (payload as Record<string, unknown>)[key]
      : undefined;
    if (Array.isArray(wanted)) {
      if (!(wanted as readonly unknown[]).includes(actual)) return false;
    } else if (actual !== wanted) {
      return false;
    }
  }
  return true;
}

/**
 * Whether a data message is delivered to a subscription: the topic delivers the
 * message's type (and, for `events:<type>`, its event type) and the filter matches.
 *
 * @example
 * matchesSubscription(message, { topic: 'test:progress', filter: { suite_execution_id: 123 } });
 */
export function matchesSubscription(message: DataMessage, subscription: Subscription): boolean {
  const definition = describeTopic(subscription.topic);
  if (!definition || definition.delivers !== message.type) return false;
  if (definition.eventType !== undefined) {
    if (message.type !== 'event' || message.payload.event_type !== definition.eventType) return false;
  }
  return matchesFilter(message.payload, subscription.filter);
}
