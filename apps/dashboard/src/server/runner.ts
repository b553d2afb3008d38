import type { DataMessage } from '@atp/ws-protocol';
import { type Clock, scaledClock } from './clock.js';
import type { ExecutionStore } from './executions.js';
import { createRandom } from './random.js';
import { planSuite } from './scenario.js';
import { type SimulationContext, simulateSuite } from './simulation.js';

/** Where the runner reports publish failures. */
export interface RunnerLogger {
  warn(obj: object, msg?: string): void;
}

/** Options of {@link SimulatedRunner}. */
export interface SimulatedRunnerOptions {
  /** Publishes messages, e.g. `(messages) => hub.publish(messages)`. */
  publish: (messages: DataMessage[]) => Promise<void>;
  /** Records what was published, for `GET /api/executions`. */
  store?: ExecutionStore;
  /** How fast simulated time runs compared to the wall clock (ignored with `clock`). @default 1 */
  speed?: number;
  /** Time source. @default scaledClock(speed) */
  clock?: Clock;
  /** Seed of the random choices, to replay the same traffic. @default random */
  seed?: number;
  /** Suites started at once when the runner starts. @default 2 */
  initialSuites?: number;
  /** Most suites running at the same time. @default 3 */
  maxConcurrentSuites?: number;
  /** Simulated ms between two attempts to start a new suite: a random value in this range. @default [8000, 20000] */
  suiteIntervalMs?: readonly [number, number];
  /** Tests per suite: a random count in this range. @default [5, 20] */
  testsPerSuite?: readonly [number, number];
  /** Stop starting suites after this many. @default Infinity */
  maxSuites?: number;
  /** The first execution id. @default 100 */
  firstId?: number;
  logger?: RunnerLogger;
}

/**
 * A simulated ATP test runner: several agents run suites of 5-20 tests,
 * each with several runs of LLM requests, tool calls and reasoning, and
 * everything a real runner reports is published through the hub, while new
 * suites keep starting.
 *
 * @example
 * const runner = new SimulatedRunner({ publish: (m) => hub.publish(m), store, speed: 2 });
 * runner.start();
 * await runner.stop();
 */
export class SimulatedRunner {
  readonly #options: SimulatedRunnerOptions;
  readonly #clock: Clock;
  readonly #controller = new AbortController();
  readonly #active = new Set<Promise<void>>();
  #loop: Promise<void> | undefined;
  #started = 0;
  #nextId: number;
  #publishFailures = 0;

  constructor(options: SimulatedRunnerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? scaledClock(options.speed ?? 1);
    this.#nextId = options.firstId ?? 100;
  }

  /** Suites started so far. */
  get suitesStarted(): number {
    return this.#started;
  }

  /** Suites running now. */
  get activeSuites(): number {
    return this.#active.size;
  }

  /** Starts the simulation; call once. */
  start(): void {
    if (this.#loop) throw new Error('the runner is already started');
    this.#loop = this.#run();
  }

  /** Resolves once `maxSuites` suites have all finished (never without `maxSuites`, unless stopped). */
  async finished(): Promise<void> {
    await this.#loop;
    await Promise.all(this.#active);
  }

  /** Stops starting suites and ends the running ones where they are. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.finished();
  }

  async #run(): Promise<void> {
    const options = this.#options;
    const random = createRandom(options.seed);
    const signal = this.#controller.signal;
    const maxSuites = options.maxSuites ?? Number.POSITIVE_INFINITY;
    const maxConcurrent = options.maxConcurrentSuites ?? 3;
    const [minInterval, maxInterval] = options.suiteIntervalMs ?? [8000, 20_000];
    const [minTests, maxTests] = options.testsPerSuite ?? [5, 20];
    const context: SimulationContext = {
      clock: this.#clock,
      random,
      signal,
      nextId: () => this.#nextId++,
      emit: (messages) => this.#emit(messages),
    };
    const launch = () => {
      this.#started += 1;
      const suite = simulateSuite(context, planSuite(random, minTests, maxTests))
        .catch((error: unknown) => options.logger?.warn({ err: error }, 'simulated suite failed'))
        .finally(() => this.#active.delete(suite));
      this.#active.add(suite);
    };
    for (let i = 0; i < (options.initialSuites ?? 2) && this.#started < maxSuites; i++) launch();
    while (!signal.aborted && this.#started < maxSuites) {
      await this.#clock.sleep(random.float(minInterval, maxInterval), signal);
      if (!signal.aborted && this.#active.size < maxConcurrent) launch();
    }
  }

  async #emit(messages: DataMessage[]): Promise<void> {
    if (this.#controller.signal.aborted) return;
    try {
      await this.#options.publish(messages);
      this.#options.store?.apply(messages);
      this.#publishFailures = 0;
    } catch (error) {
      // Keep simulating: a real runner does not stop because the dashboard's broker is down.
      this.#publishFailures += 1;
      if (this.#publishFailures === 1 || this.#publishFailures % 100 === 0) {
        this.#options.logger?.warn(
          { err: error, failures: this.#publishFailures },
          'simulated runner could not publish; messages dropped',
        );
      }
    }
  }
}
