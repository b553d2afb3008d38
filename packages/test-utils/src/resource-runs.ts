// A live resource for tests: one suite run as the server knows it (kept from the hub's delivered
// stream) and as a client reduces it. `completed` lists every test_completed in stream order, so a
// message applied twice or skipped shows; `progress` keeps the newest percent per test, which
// coalescing of superseded progress leaves right.
//
// The hub and the resource options are typed by their shape here: this package must not depend on
// @atp/ws-server or @atp/ws-client, whose own tests use it.
import type { DataMessage, DeliveredDataMessage } from '@atp/ws-protocol';

/** The part of `hub.resources` (@atp/ws-server) that serves runs. */
export interface ResourceHub {
  readonly resources: {
    follow(follower: (messages: readonly DataMessage[]) => void): unknown;
    register(kind: string, provider: (id: string) => { data: Run } | undefined): void;
  };
}

/** What `openResource` (@atp/ws-client) needs to hold one run. */
export interface RunOptions {
  readonly subscriptions: ReadonlyArray<{
    readonly topic: string;
    readonly filter: { suite_execution_id: number };
  }>;
  readonly reduce: (run: Run, message: DeliveredDataMessage) => Run;
}

export interface Run {
  completed: number[];
  progress: Record<string, number>;
}

/** Keeps every run from the hub's stream and serves it as resource kind `run`. */
export function serveRuns(hub: ResourceHub): Map<number, Run> {
  const runs = new Map<number, Run>();
  const runOf = (suite: number) => {
    let run = runs.get(suite);
    if (!run) {
      run = { completed: [], progress: {} };
      runs.set(suite, run);
    }
    return run;
  };
  hub.resources.follow((messages) => {
    for (const message of messages) applyToRun(runOf, message);
  });
  hub.resources.register('run', (id) => {
    if (!/^\d+$/.test(id)) return undefined;
    return { data: structuredClone(runs.get(Number(id)) ?? { completed: [], progress: {} }) };
  });
  return runs;
}

function applyToRun(runOf: (suite: number) => Run, message: DataMessage): void {
  if (message.type === 'test_completed')
    runOf(message.payload.suite_execution_id).completed.push(message.payload.test_execution_id);
  if (message.type === 'test_progress') {
    runOf(message.payload.suite_execution_id).progress[message.payload.test_execution_id] =
      message.payload.progress_percent;
  }
}

/** The client side of resource `run` for one suite. */
export function runOptions(suite: number): RunOptions {
  return {
    subscriptions: [
      { topic: 'test:progress', filter: { suite_execution_id: suite } },
      { topic: 'test:completed', filter: { suite_execution_id: suite } },
    ],
    reduce: (run, message) => {
      if (message.type === 'test_completed') {
        return { ...run, completed: [...run.completed, message.payload.test_execution_id] };
      }
      if (message.type === 'test_progress') {
        const { test_execution_id: test, progress_percent: percent } = message.payload;
        return { ...run, progress: { ...run.progress, [test]: percent } };
      }
      return run;
    },
  };
}

export function progress(suite: number, test: number, percent: number): DataMessage {
  return {
    type: 'test_progress',
    payload: {
      suite_execution_id: suite,
      test_execution_id: test,
      test_id: `t-${test}`,
      status: 'running',
      progress_percent: percent,
    },
  };
}

export function completed(suite: number, test: number): DataMessage {
  return {
    type: 'test_completed',
    payload: { suite_execution_id: suite, test_execution_id: test, test_id: `t-${test}`, success: true },
  };
}

/** `count` messages of suite `suite` from test id `first` on: progress then completion of each test. */
export function runMessages(suite: number, first: number, count: number): DataMessage[] {
  const messages: DataMessage[] = [];
  for (let test = first; messages.length < count; test++) {
    messages.push(progress(suite, test, 50));
    if (messages.length < count) messages.push(completed(suite, test));
  }
  return messages;
}
