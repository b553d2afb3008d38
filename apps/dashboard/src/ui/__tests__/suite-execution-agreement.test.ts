import { ResourceSync } from '@atp/ws-client';
import {
  type DataMessage,
  DataMessageSchema,
  type DeliveredDataMessage,
  matchesSubscription,
} from '@atp/ws-protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExecutionStore, executionIdOf, SUITE_EXECUTION } from '../../server/executions.js';
import type { SuiteExecutionRecord } from '../types.js';
import { reduceSuite, suiteSubscriptions } from '../use-suite-execution.js';

const EPOCH = 'e1';

/** The page's live copy of one suite: the client's ordering rules (`ResourceSync`) around `reduceSuite`. */
interface Page {
  id: number;
  /** The first offset at which it asks for its snapshot (it gets one once the server has the suite). */
  joinAt: number;
  sync: ResourceSync<SuiteExecutionRecord>;
  live: boolean;
  fetches: number;
}

/** Whether the handle delivers `message` to the page of suite `id`, by its default rule. */
function pageTakes(id: number, message: DataMessage): boolean {
  if (
    message.type === 'delta_update' &&
    message.payload.resource_type === SUITE_EXECUTION &&
    String(message.payload.resource_id) !== String(id)
  )
    return false;
  return suiteSubscriptions(id).some((s) => matchesSubscription(message, s));
}

/** The snapshot the server answers (`GET /api/ws/resources/suite_execution/:id`), as JSON carries it. */
function fetchSnapshot(store: ExecutionStore, page: Page, offset: number): void {
  const record = store.get(page.id);
  if (record?.type !== 'suite_execution') return;
  const token = page.sync.begin();
  const step = page.sync.snapshot(token, {
    kind: SUITE_EXECUTION,
    resource_id: String(page.id),
    epoch: EPOCH,
    offset,
    version: record.sequence,
    data: JSON.parse(JSON.stringify(record)),
  });
  expect(step).toBeUndefined();
  page.live = true;
  page.fetches += 1;
}

const json = (value: unknown) => JSON.parse(JSON.stringify(value ?? null));

/**
 * Feeds `messages` to the server's store and to a page of each suite in `pages` (joining at its
 * offset), then expects each page to hold what the store has for its suite.
 */
function expectAgreement(
  messages: readonly DataMessage[],
  joins: ReadonlyArray<[id: number, joinAt: number]>,
) {
  const store = new ExecutionStore();
  const pages: Page[] = joins.map(([id, joinAt]) => ({
    id,
    joinAt,
    sync: new ResourceSync<SuiteExecutionRecord>(SUITE_EXECUTION, String(id), reduceSuite),
    live: false,
    fetches: 0,
  }));
  messages.forEach((message, index) => {
    expect(DataMessageSchema.safeParse(message).success).toBe(true);
    const offset = index + 1;
    store.apply([message]);
    for (const page of pages) {
      if (!page.live) {
        if (offset >= page.joinAt) fetchSnapshot(store, page, offset);
        continue;
      }
      if (!pageTakes(page.id, message)) continue;
      const delivered = { ...message, epoch: EPOCH, offset, sequence: offset } as DeliveredDataMessage;
      const step = page.sync.message(delivered, {
        type: message.type,
        epoch: EPOCH,
        offset,
        sequence: offset,
      });
      // A version gap, a reducer that threw, …: the handle fetches the snapshot again.
      if (step) fetchSnapshot(store, page, offset);
    }
  });
  for (const page of pages) {
    if (!page.live) continue;
    expect(json(page.sync.data), `suite ${page.id}`).toEqual(json(store.get(page.id)));
  }
}

const sp = (suite: number, status = 'running'): DataMessage => ({
  type: 'suite_progress',
  payload: {
    suite_execution_id: suite,
    status: status as 'running',
    progress_percent: 10,
    total_tests: 3,
    completed_tests: 0,
  },
});
const tp = (suite: number, test: number, status = 'running'): DataMessage => ({
  type: 'test_progress',
  payload: {
    suite_execution_id: suite,
    test_execution_id: test,
    test_id: `t${test}`,
    status: status as 'running',
    progress_percent: 20,
  },
});
const delta = (
  resource_type: string,
  resource_id: number | string,
  sequence: number,
  changes: Record<string, unknown>,
  base_sequence?: number,
): DataMessage => ({
  type: 'delta_update',
  payload: {
    resource_type,
    resource_id,
    sequence,
    ...(base_sequence === undefined ? {} : { base_sequence }),
    changes,
  },
});

describe('the page and GET /api/executions/:id agree (store vs. the page reducer)', () => {
  it('a suite delta whose resource_id is "0500" changes suite 500 on neither side', () => {
    expectAgreement(
      [
        sp(500),
        tp(500, 501),
        sp(600),
        tp(600, 601),
        delta('suite_execution', '0500', 1, { status: 'failed' }),
      ],
      [
        [500, 0],
        [600, 0],
      ],
    );
  });

  it('a test delta after the test moved to another suite changes it the same way on every page', () => {
    expectAgreement(
      [
        sp(500),
        tp(500, 501),
        sp(600),
        tp(600, 601),
        tp(600, 501),
        delta('test_execution', 501, 1, { status: 'passed', score: 0.9 }),
      ],
      [
        [500, 0],
        [600, 0],
      ],
    );
  });

  it('a suite delta published twice is taken once, as the handle takes it', () => {
    expectAgreement(
      [
        sp(500),
        delta('suite_execution', 500, 1, { status: 'failed' }),
        sp(500, 'running'),
        delta('suite_execution', 500, 1, { status: 'failed' }),
      ],
      [[500, 0]],
    );
  });

  it('executionIdOf(resource_id) is n exactly when the handle of id n takes the delta as its own', () => {
    const n = fc.oneof(fc.nat(1000), fc.constant(Number.MAX_SAFE_INTEGER));
    const resourceId = fc.oneof(
      fc.nat(1000),
      n.map(String),
      fc.string({ minLength: 1, maxLength: 6 }),
      fc.stringMatching(/^[0-9]{1,20}$/),
      n.chain((k) => fc.constantFrom(`0${k}`, ` ${k}`, `${k}.0`, `+${k}`, `${k}e0`)),
    );
    fc.assert(
      fc.property(resourceId, n, (id, k) => {
        expect(executionIdOf(id) === k).toBe(String(id) === String(k));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees for random interleavings (ids as numbers and strings, tests moving between suites)', () => {
    const suiteIds = [0, 7, 500];
    const testIds = [1, 501, 502];
    // The forms a resource_id of execution n may take: canonical (mostly), and others that are not.
    const idForm = (n: number) =>
      fc.oneof(
        { arbitrary: fc.constantFrom<number | string>(n, String(n)), weight: 3 },
        {
          arbitrary: fc.constantFrom(
            `0${n}`,
            `00${n}`,
            ` ${n}`,
            `${n} `,
            `+${n}`,
            `${n}.0`,
            `${n}e0`,
            `0x${n.toString(16)}`,
            `${n}n`,
          ),
          weight: 1,
        },
      );
    const status = fc.constantFrom('pending', 'running', 'completed', 'failed');
    const testStatus = fc.constantFrom('pending', 'running', 'passed', 'failed');
    const changes = fc.record(
      { status, score: fc.constantFrom(0, 0.5, 1, null), duration_seconds: fc.constantFrom(1, 2) },
      { requiredKeys: [] },
    );
    // How a delta's sequence follows its resource's: the next one, the same again, a jump, with a
    // base_sequence, or the previous delta published again as it was.
    const seqStep = fc.constantFrom('next', 'next', 'next', 'same', 'jump', 'base', 'again', 'again');
    const message = fc.oneof(
      {
        arbitrary: fc
          .record({ suite: fc.constantFrom(...suiteIds), status })
          .map(({ suite, status }): DataMessage => sp(suite, status)),
        weight: 2,
      },
      {
        arbitrary: fc
          .record({
            suite: fc.constantFrom(...suiteIds),
            test: fc.constantFrom(...testIds),
            status: testStatus,
          })
          .map(({ suite, test, status }): DataMessage => tp(suite, test, status)),
        weight: 3,
      },
      fc
        .record({
          suite: fc.constantFrom(...suiteIds),
          test: fc.constantFrom(...testIds),
          success: fc.boolean(),
        })
        .map(
          ({ suite, test, success }): DataMessage => ({
            type: 'test_completed',
            payload: {
              suite_execution_id: suite,
              test_execution_id: test,
              test_id: `t${test}`,
              success,
              score: 0.5,
            },
          }),
        ),
      fc.record({ suite: fc.constantFrom(...suiteIds), test: fc.constantFrom(...testIds) }).map(
        ({ suite, test }): DataMessage => ({
          type: 'event',
          payload: {
            suite_execution_id: suite,
            test_execution_id: test,
            event_type: 'tool_call',
            timestamp: '2024-01-15T10:30:00Z',
            payload: {},
          },
        }),
      ),
      {
        arbitrary: fc
          .oneof(
            fc.record({ type: fc.constant('suite_execution'), n: fc.constantFrom(...suiteIds) }),
            fc.record({ type: fc.constant('test_execution'), n: fc.constantFrom(...testIds) }),
            fc.record({
              type: fc.constantFrom('suite_execution', 'test_execution'),
              n: fc.constantFrom(...suiteIds, ...testIds),
            }),
          )
          .chain(({ type, n }) =>
            fc
              .record({ id: idForm(n), step: seqStep, changes })
              .map((rest) => ({ delta: true as const, type, ...rest })),
          ),
        weight: 5,
      },
    );
    const run = fc.record({
      items: fc.array(message, { minLength: 1, maxLength: 60, size: 'medium' }),
      // A page of each suite, joining early or late (some after a snapshot of a later run).
      joins: fc.tuple(...suiteIds.map((id) => fc.nat(12).map((at): [number, number] => [id, at]))),
    });
    fc.assert(
      fc.property(run, ({ items, joins }) => {
        // Sequences per resource as published (the store's and the page's versions follow them).
        const sequences = new Map<string, number>();
        let previous: DataMessage | undefined;
        const messages = items.map((item): DataMessage => {
          if (!('delta' in item)) return item;
          if (item.step === 'again' && previous) return previous;
          const key = `${item.type}:${executionIdOf(item.id) ?? String(item.id)}`;
          const last = sequences.get(key) ?? 0;
          const sequence = item.step === 'same' ? last : item.step === 'jump' ? last + 2 : last + 1;
          sequences.set(key, Math.max(last, sequence));
          previous = delta(
            item.type,
            item.id,
            sequence,
            item.changes,
            item.step === 'base' ? last : undefined,
          );
          return previous;
        });
        expectAgreement(messages, joins);
      }),
      { numRuns: 1000 },
    );
  });
});
