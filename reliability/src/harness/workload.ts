import type { DataMessage, Filter, Subscription } from '@atp/ws-protocol';
import { matchesSubscription } from '@atp/ws-protocol';

/** A small seeded PRNG (mulberry32), so a run's workload can be replayed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;

const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
const EVENT_TYPES = ['tool_call', 'llm_request', 'llm_response', 'reasoning'] as const;
const RESOURCES = ['suite', 'test', 'agent'] as const;

/**
 * The `k`-th message of a mixed ATP workload over `suites` suites. Every
 * progress message has a key of its own (test_execution_id = k), so none is
 * ever superseded: the soak can then demand every message, exactly.
 */
export function workloadMessage(rand: () => number, k: number, suites: number): DataMessage {
  const suite = 1 + Math.floor(rand() * suites);
  const roll = rand();
  const timestamp = '2024-01-15T10:30:00Z';
  if (roll < 0.3) {
    return {
      type: 'log_entry',
      payload: { suite_execution_id: suite, level: pick(rand, LEVELS), message: `log ${k}`, timestamp },
    };
  }
  if (roll < 0.55) {
    return {
      type: 'event',
      payload: { suite_execution_id: suite, event_type: pick(rand, EVENT_TYPES), timestamp, payload: { k } },
    };
  }
  if (roll < 0.75) {
    return {
      type: 'test_progress',
      payload: {
        suite_execution_id: suite,
        test_execution_id: k,
        test_id: `test-${k}`,
        status: 'running',
        progress_percent: Math.floor(rand() * 100),
      },
    };
  }
  if (roll < 0.85) {
    return {
      type: 'test_completed',
      payload: {
        suite_execution_id: suite,
        test_execution_id: k,
        test_id: `test-${k}`,
        success: rand() < 0.8,
      },
    };
  }
  if (roll < 0.86) {
    return {
      type: 'suite_progress',
      payload: {
        suite_execution_id: 100_000 + k,
        status: 'running',
        progress_percent: 50,
        completed_tests: 1,
        total_tests: 2,
      },
    };
  }
  if (roll < 0.93) {
    return {
      type: 'suite_completed',
      payload: {
        suite_execution_id: suite,
        success_rate: 1,
        total_tests: 2,
        passed_tests: 2,
        failed_tests: 0,
      },
    };
  }
  return {
    type: 'delta_update',
    payload: { resource_type: pick(rand, RESOURCES), resource_id: suite, sequence: k, changes: { k } },
  };
}

/** One random subscription a dashboard page might hold. */
export function randomSubscription(rand: () => number, suites: number): Subscription {
  const suite = () => 1 + Math.floor(rand() * suites);
  const templates: Array<() => Subscription> = [
    () => ({ topic: 'test:progress', filter: { suite_execution_id: suite() } }),
    () => ({ topic: 'test:completed', filter: { suite_execution_id: [suite(), suite()] } }),
    () => ({
      topic: 'suite:completed',
      filter: { suite_execution_id: [suite(), suite(), suite(), suite()] },
    }),
    () => ({ topic: 'events:*', filter: { suite_execution_id: suite() } }),
    () => ({ topic: 'events:tool_call', filter: { suite_execution_id: suite() } }),
    () => ({ topic: 'logs', filter: { suite_execution_id: suite(), level: ['error', 'critical'] } }),
    () => ({ topic: 'logs', filter: { suite_execution_id: [suite(), suite(), suite()] } }),
    () => ({ topic: 'delta', filter: { resource_type: pick(rand, RESOURCES) } }),
    () => ({ topic: 'suite:progress' }),
  ];
  return pick(rand, templates)();
}

/** A set of subscriptions shared by several clients, with the offsets of the messages it must receive. */
export interface Profile {
  readonly subscriptions: readonly { topic: string; filter?: Filter }[];
  /** Stream offsets of the published messages that match, in publish order. */
  readonly expected: number[];
}

/**
 * `count` profiles of 1 to 3 subscriptions. Some pairs overlap on purpose
 * (`events:*` and `events:tool_call` of the same suite), to prove a message
 * matching twice is delivered once.
 */
export function makeProfiles(rand: () => number, count: number, suites: number): Profile[] {
  return Array.from({ length: count }, (_, i) => {
    const subscriptions: Subscription[] = [];
    const n = 1 + Math.floor(rand() * 3);
    for (let j = 0; j < n; j++) subscriptions.push(randomSubscription(rand, suites));
    if (i % 10 === 0) {
      const suite = 1 + Math.floor(rand() * suites);
      subscriptions.push(
        { topic: 'events:*', filter: { suite_execution_id: suite } },
        { topic: 'events:tool_call', filter: { suite_execution_id: suite } },
      );
    }
    return { subscriptions, expected: [] };
  });
}

/** Appends `offset` to the expectations of every profile that `message` matches (once per profile). */
export function recordExpected(profiles: readonly Profile[], message: DataMessage, offset: number): void {
  for (const profile of profiles) {
    if (profile.subscriptions.some((s) => matchesSubscription(message, s))) profile.expected.push(offset);
  }
}
