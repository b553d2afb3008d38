import type { DataMessage, DeliveredDataMessage } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { ExecutionStore, newSuiteRecord } from '../../server/executions.js';
import { SimulatedRunner } from '../../server/runner.js';
import type { SuiteExecutionRecord } from '../types.js';
import { reduceSuite } from '../use-suite-execution.js';

const delivered = (message: DataMessage, offset: number) =>
  ({ ...message, epoch: 'e1', offset, sequence: offset }) as DeliveredDataMessage;

describe('reduceSuite (the page side of the suite_execution resource)', () => {
  it('ends where the server store ends for a whole run, and keeps the object when nothing changed', async () => {
    const published: DataMessage[] = [];
    const runner = new SimulatedRunner({
      publish: async (messages) => {
        published.push(...messages);
      },
      speed: 5000,
      seed: 3,
      maxSuites: 2,
      initialSuites: 2,
    });
    runner.start();
    await runner.finished();
    const store = new ExecutionStore();
    store.apply(published);
    const [first] = store.list();
    expect(first).toBeDefined();
    let page: SuiteExecutionRecord = newSuiteRecord(first!.id);
    let changes = 0;
    published.forEach((message, index) => {
      const next = reduceSuite(page, delivered(message, index + 1));
      if (next !== page) changes += 1;
      page = next;
    });
    expect(JSON.parse(JSON.stringify(page))).toEqual(JSON.parse(JSON.stringify(store.get(first!.id))));
    // The other suite's messages left it alone: fewer changes than messages.
    expect(changes).toBeGreaterThan(0);
    expect(changes).toBeLessThan(published.length);
  });
});
