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
 * 'selective' (suite `1 + n % suites`), 'selective-random' (a suite drawn
 * by a hash of `n`), 'mixed' (progress, events, logs,
 * suite progress over 10 suites), 'replay' (the live progress of the run
 * whose history the replay scenarios fill, {@link runMessage}).
 */
export function messageFor(kind, n, stamp, suites = 1) {
  if (kind === 'fanout') return progress(1, n, stamp);
  if (kind === 'replay') return progress(REPLAY_SUITE, n, stamp);
  if (kind === 'selective') return progress(1 + (n % suites), n, stamp);
  // Each message to a suite drawn by a hash of its number: runs report in no particular order.
  if (kind === 'selective-random') return progress(1 + (mix(n) % suites), n, stamp);
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
  if (kind === 'replay') return [{ topic: 'test:progress', filter: { suite_execution_id: REPLAY_SUITE } }];
  if (kind === 'selective' || kind === 'selective-random') {
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

// ── the suite run replayed by the replay scenarios ─────────────────────────

/** The suite of the replayed run (and of the live progress published while dashboards join it). */
export const REPLAY_SUITE = 42;
/** Tests running at once, and messages per test (its last one is its `test_completed`). */
const RUN_WORKERS = 8;
const RUN_STEPS = 100;
/** The run's messages are stamped as if published one every 18 ms: 100,000 in 30 minutes. */
export const RUN_MS_PER_MESSAGE = 18;
const RUN_STARTED = Date.parse('2025-01-01T08:00:00.000Z');
/** Test execution ids of the run start here, far from the live progress's (its message numbers). */
const RUN_TEST_IDS = 1_000_000;

/**
 * What a late-joining dashboard subscribes to: the detail page of one suite
 * (apps/dashboard's `DetailFeeds`), each subscription replaying from the start.
 * Each topic delivers one message type, in this order: `DASHBOARD_TYPES`.
 */
export const DASHBOARD_TOPICS = ['test:progress', 'test:completed', 'events:*', 'logs'];
export const DASHBOARD_TYPES = ['test_progress', 'test_completed', 'event', 'log_entry'];

const WORDS =
  'the agent opened the page and searched the catalogue for the cheapest flight then compared three ' +
  'offers checked the baggage rules read the refund policy and asked the user to confirm the booking ' +
  'before paying with the stored card while the tool returned a list of results with prices and times ';
const TEXT = WORDS.repeat(12);
const EVENT_TYPES = ['tool_call', 'llm_request', 'llm_response', 'reasoning'];
const LEVELS = ['debug', 'info', 'info', 'info', 'warning', 'error'];

/** Deterministic text of about `length` characters (no `@`, no quotes: nothing the markers could match). */
function text(seed, length) {
  const start = seed % 300;
  return TEXT.slice(start, start + length);
}

/**
 * Message `k` (0-based) of a suite run: 8 tests at a time, 100 messages per
 * test, of which about 70% `test_progress` (all but each test's last are
 * superseded), 18% `event` (tool calls, LLM requests and responses,
 * reasoning), 11% `log_entry`, and one `test_completed`. None carries a
 * marker: the history is told from live messages by its offsets.
 */
export function runMessage(k) {
  const perBlock = RUN_WORKERS * RUN_STEPS;
  const i = k % perBlock;
  const test = Math.floor(k / perBlock) * RUN_WORKERS + (i % RUN_WORKERS);
  const step = Math.floor(i / RUN_WORKERS);
  const base = {
    suite_execution_id: REPLAY_SUITE,
    test_execution_id: RUN_TEST_IDS + test,
  };
  const testId = `test-${String(test).padStart(5, '0')}`;
  const h = mix(k);
  if (step === RUN_STEPS - 1) {
    const success = mix(test) % 10 !== 0;
    return {
      type: 'test_completed',
      payload: {
        ...base,
        test_id: testId,
        test_name: `Booking flow ${test}`,
        success,
        score: success ? 0.8 + (h % 20) / 100 : (h % 40) / 100,
        duration_seconds: 30 + (h % 600) / 10,
        ...(success ? {} : { error: text(h, 80) }),
      },
    };
  }
  const r = h % 100;
  const timestamp = new Date(RUN_STARTED + k * RUN_MS_PER_MESSAGE).toISOString();
  if (r < 70) {
    return {
      type: 'test_progress',
      payload: {
        ...base,
        test_id: testId,
        test_name: `Booking flow ${test}`,
        status: 'running',
        progress_percent: Math.round((step * 100) / RUN_STEPS),
        current_run: 1,
        total_runs: 1,
        message: `Executing step ${step + 1} of ${RUN_STEPS}`,
      },
    };
  }
  if (r < 88) {
    const eventType = EVENT_TYPES[h % EVENT_TYPES.length];
    const payload =
      eventType === 'tool_call'
        ? { tool: 'search', arguments: { query: text(h, 40) }, result: text(h >>> 3, 120 + (h % 200)) }
        : eventType === 'llm_request'
          ? { model: 'gpt-4o', prompt_tokens: 800 + (h % 3000), prompt: text(h, 200 + (h % 400)) }
          : eventType === 'llm_response'
            ? { model: 'gpt-4o', completion_tokens: 50 + (h % 500), text: text(h, 150 + (h % 500)) }
            : { thought: text(h, 100 + (h % 200)) };
    return {
      type: 'event',
      payload: {
        ...base,
        sequence: step,
        event_type: eventType,
        timestamp,
        payload,
        duration_ms: (h % 5000) / 10,
      },
    };
  }
  return {
    type: 'log_entry',
    payload: {
      ...base,
      level: LEVELS[h % LEVELS.length],
      message: text(h, 60 + (h % 120)),
      timestamp,
      source: 'runner',
    },
  };
}
