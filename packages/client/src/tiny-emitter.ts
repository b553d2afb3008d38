type Listener = (...args: never[]) => void;

/**
 * The subset of eventemitter3's `EventEmitter` that `ATPWebSocket` uses (`on`, `off`,
 * `listeners`; the client calls the listeners itself, each isolated), with the same
 * semantics: listeners in the order they were added, `off(event, fn)` removes every
 * registration of `fn`, `off(event)` removes all, and `listeners(event)` is a snapshot
 * that later `on`/`off` calls do not change. Only the IIFE browser build uses it, in place
 * of eventemitter3; the ESM/CJS builds use eventemitter3 itself, and the SSE fallback script
 * (whose `Fallback` is an emitter for its users) the fuller `mini-emitter.ts`. The parity is tested.
 */
export class EventEmitter<Events extends object = Record<string, Listener>> {
  // Copy on write: an array handed out by `listeners` is never changed afterwards.
  #events = new Map<keyof Events, unknown[]>();

  /** Adds a listener. */
  on<E extends keyof Events>(event: E, fn: Events[E]): this {
    this.#events.set(event, [...this.listeners(event), fn]);
    return this;
  }

  /** Removes every registration of `fn` for `event`, or every listener of `event` without `fn`. */
  off<E extends keyof Events>(event: E, fn?: Events[E]): this {
    this.#events.set(event, fn === undefined ? [] : this.listeners(event).filter((l) => l !== fn));
    return this;
  }

  /** The listeners of `event`, in the order they were added. */
  listeners<E extends keyof Events>(event: E): Array<Events[E]> {
    return (this.#events.get(event) ?? []) as Array<Events[E]>;
  }
}
