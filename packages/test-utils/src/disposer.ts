/**
 * A registry of cleanups, run in reverse order, so a test that fails halfway
 * still closes every server and socket it opened.
 *
 * @example
 * const disposer = new Disposer();
 * afterEach(() => disposer.run());
 * disposer.add(() => hub.close());
 */
export class Disposer {
  #cleanups: Array<() => unknown> = [];

  add<T>(cleanup: () => unknown, value?: T): T | undefined {
    this.#cleanups.push(cleanup);
    return value;
  }

  async run(): Promise<void> {
    const cleanups = this.#cleanups.reverse();
    this.#cleanups = [];
    const errors: unknown[] = [];
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}
