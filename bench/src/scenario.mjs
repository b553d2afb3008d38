// What every process of the benchmark agrees on: the messages (a pure function
// of their number), who subscribes to what, and the routing keys the bare `ws`
// floor and Socket.IO use for what our hub does with its subscription index.

/** Suites of the mixed scenario. */
const MIXED_SUITES = 10;
const LOG_TIMESTAMP = '2025-01-01T00:00:00.000Z';

/**
 * Every message carries `"@<n>:<stamp>"` in a string field: `n` is its
 * number (loss and order checks), `stamp` the publish time in µs of the
 * monotonic clock, which all processes of one host share.
 */
export function marker(n, stamp) {
  return `@${n}:${stamp}`;
}

/** Microseconds of CLOCK_MONOTONIC: comparable across processes of one host. */
export function nowMicros() {
  return Number(process.hrtime.bigint() / 1000n);
}

function progress(suite, n, stamp) {
  return {
    type: 'test_progress',
    payload: {
      suite_execution_id: suite,
      // One test per message: nothing is superseded, so nothing may be coalesced away.
      test_execution_id: n,
      test_id: `test-${n % 1000}`,
      status: 'running',
      progress_percent: 50,
      message: marker(n, stamp),
    },
  };
}

/** A small deterministic hash, so that the mixed traffic is the same in every process. */
function mix(n) {
  let x = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The scenario's message number `n`. `kind`: 'fanout' (all to suite 1),
 * 'selective' (suite `1 + n % suites`), 'mixed' (progress, events, logs,
 * suite progress over 10 suites).
 */
export function messageFor(kind, n, stamp, suites = 1) {
  if (kind === 'fanout') return progress(1, n, stamp);
  if (kind === 'selective') return progress(1 + (n % suites), n, stamp);
  const h = mix(n);
  const suite = 1 + (h % MIXED_SUITES);
  const r = (h >>> 8) % 100;
  if (r < 55) return progress(suite, n, stamp);
  if (r < 70) {
    return {
      type: 'event',
      payload: {
        suite_execution_id: suite,
        test_execution_id: n,
        event_type: r < 64 ? 'tool_call' : 'llm_request',
        timestamp: LOG_TIMESTAMP,
        payload: { tool: 'search', note: marker(n, stamp) },
      },
    };
  }
  if (r < 80) {
    return {
      type: 'suite_progress',
      payload: {
        suite_execution_id: suite,
        suite_name: marker(n, stamp),
        status: 'running',
        progress_percent: 40,
        completed_tests: 40,
        total_tests: 100,
      },
    };
  }
  return {
    type: 'log_entry',
    payload: {
      suite_execution_id: suite,
      test_execution_id: n,
      level: r < 92 ? 'info' : 'error',
      message: marker(n, stamp),
      timestamp: LOG_TIMESTAMP,
      source: 'runner',
    },
  };
}

/** The subscriptions (topic + filter) of client `i` of `clients`. */
export function subscriptionsFor(kind, i, clients, suites = 1) {
  if (kind === 'fanout') return [{ topic: 'test:progress', filter: { suite_execution_id: 1 } }];
  if (kind === 'selective') {
    return [{ topic: 'test:progress', filter: { suite_execution_id: 1 + (i % suites) } }];
  }
  // 5% overview pages (every suite's progress), the rest one suite's dashboard each.
  if (i < Math.ceil(clients * 0.05)) return [{ topic: 'suite:progress' }];
  const suite = 1 + (i % MIXED_SUITES);
  return [
    { topic: 'test:progress', filter: { suite_execution_id: suite } },
    { topic: 'suite:progress', filter: { suite_execution_id: suite } },
    { topic: 'events:*', filter: { suite_execution_id: suite } },
    { topic: 'logs', filter: { suite_execution_id: suite, level: 'error' } },
  ];
}

const TOPIC_CODES = { 'test:progress': 'tp', 'suite:progress': 'sp', 'events:*': 'ev', logs: 'lg' };
const TYPE_CODES = { test_progress: 'tp', suite_progress: 'sp', event: 'ev', log_entry: 'lg' };

/** Room / routing key of a subscription (floor and Socket.IO). */
export function keyOfSubscription({ topic, filter }) {
  const code = TOPIC_CODES[topic];
  const suite = filter?.suite_execution_id ?? '*';
  return filter?.level ? `${code}:${suite}:${filter.level}` : `${code}:${suite}`;
}

/** Routing keys a message goes to (floor and Socket.IO); a client is never in two of them. */
export function keysOfMessage(message) {
  const code = TYPE_CODES[message.type];
  const suite = message.payload.suite_execution_id;
  if (message.type === 'log_entry') return [`${code}:${suite}:${message.payload.level}`];
  if (message.type === 'suite_progress') return [`${code}:${suite}`, `${code}:*`];
  return [`${code}:${suite}`];
}
