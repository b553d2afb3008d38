type Listener = { fn: (...args: never[]) => void; once: boolean };

/**
 * The subset of eventemitter3's `EventEmitter` that `Fallback` offers (`on`,
 * `once`, `off`, `emit`), with the same semantics: listeners run in the order
 * they were added, over a snapshot (adding or removing during `emit` affects the
 * next `emit`), `off(event, fn)` removes every registration of `fn`, `off(event)`
 * removes all. Only the SSE fallback script (`fallback.global.js`, whose `Fallback` is an
 * emitter for its users) uses it, in place of eventemitter3 (about 1 KB gzipped less); the
 * main IIFE build uses the smaller `tiny-emitter.ts`. The parity is tested.
 */
export class EventEmitter<Events extends object = Record<string, (...args: never[]) => void>> {
  #events = new Map<keyof Events, Listener[]>();

  /** Adds a listener. */
  on<E extends keyof Events>(event: E, fn: Events[E]): this {
    return this.#add(event, fn, false);
  }

  /** Adds a listener that is removed before its first call. */
  once<E extends keyof Events>(event: E, fn: Events[E]): this {
    return this.#add(event, fn, true);
  }

  /** Removes every registration of `fn` for `event`, or every listener of `event` without `fn`. */
  off<E extends keyof Events>(event: E, fn?: Events[E]): this {
    return this.#keep(event, (l) => fn !== undefined && l.fn !== fn);
  }

  /** The listeners of `event`, in the order they were added (a copy). */
  listeners<E extends keyof Events>(event: E): Array<Events[E]> {
    return (this.#events.get(event) ?? []).map((l) => l.fn as Events[E]);
  }

  /** Calls the listeners of `event` with `args`; returns whether there were any. */
  emit<E extends keyof Events>(event: E, ...args: unknown[]): boolean {
    const listeners = this.#events.get(event);
    if (!listeners) return false;
    for (const listener of listeners) {
      if (listener.once) this.#keep(event, (l) => l !== listener);
      (listener.fn as (...args: unknown[]) => void)(...args);
    }
    return true;
  }

  #add(event: keyof Events, fn: unknown, once: boolean): this {
    // Copy on write, so an `emit` in progress keeps iterating its snapshot.
    this.#events.set(event, [...(this.#events.get(event) ?? []), { fn: fn as Listener['fn'], once }]);
    return this;
  }

  #keep(event: keyof Events, keep: (listener: Listener) => boolean): this {
    const kept = (this.#events.get(event) ?? []).filter(keep);
    if (kept.length) this.#events.set(event, kept);
    else this.#events.delete(event);
    return this;
  }
}
