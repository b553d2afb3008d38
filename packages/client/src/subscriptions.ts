import { canonicalSubscriptionKey, type Filter, normalizeFilter } from '@atp/ws-protocol';
import type { DeliveredDataMessage, ReplayFrom, StreamPosition } from '@atp/ws-protocol';
import type { ATPWebSocketError } from './errors.js';
import type { MessageMeta } from './events.js';
import { FULL } from './features.js';

/** A data message as delivered to a subscription's listeners. */
export interface Delivery {
  readonly message: DeliveredDataMessage;
  readonly meta: MessageMeta;
}

/** One reference to a subscription: what one `subscribe()` call holds. */
export interface SubscriptionRef {
  readonly entry: SubscriptionEntry;
  /** Taken with an `AbortSignal`: only its owner releases it, never `unsubscribe(topic)`. */
  readonly owned: boolean;
  /** The history it asked for; while that history comes, the position of its last message. */
  from: ReplayFrom | undefined;
  released: boolean;
  /** The server confirmed it (`subscribed`, or restored by `resume`), or refused it. */
  settled: boolean;
  readonly messageListeners: Array<(message: DeliveredDataMessage, meta: MessageMeta) => void>;
  readonly errorListeners: Array<(error: ATPWebSocketError) => void>;
  readonly batchListeners: Array<(batch: Delivery[]) => void>;
  /** Messages waiting for the next batch (see the `batch` event). */
  batch: Delivery[] | undefined;
  /** History this client already holds for it, delivered to it before newer messages. */
  backlog: Delivery[] | undefined;
  /** While its own `from` history is still coming: the newer messages, delivered after it. */
  held: Delivery[] | undefined;
  /** The newest offset of its history the local replay could no longer hold (see `DeliveredHistory.attach`). */
  short?: number;
  /** The first offset the server replayed to it (in offset order, so the oldest). */
  replayedFrom?: number;
  /** Settles when the server confirms it, or rejects when it is refused or released first (ESM/CJS builds). */
  readonly ready: Promise<void> | undefined;
  resolve(): void;
  reject(error: ATPWebSocketError): void;
}

/** One distinct subscription (topic + normalised filter) and the references that hold it. */
export interface SubscriptionEntry {
  /** `canonicalSubscriptionKey(topic, filter)`. */
  readonly key: string;
  readonly topic: string;
  /** The normalised filter (`{}` when none). */
  readonly filter: Filter;
  readonly refs: SubscriptionRef[];
  /** Where the first wire `subscribe` of the session asks the replay to start. */
  from: ReplayFrom | undefined;
  /** Whether the server has been asked for it in this session (then a reconnect restores it by `resume`). */
  sent: boolean;
  /** After a `from` replay cut short by a disconnect: the position of its last replayed message. */
  resumeFrom?: ReplayFrom;
  /** The server refused it (unknown topic, bad filter, forbidden, too many): never sent again. */
  refused?: boolean;
  /** Whether the server holds it on this connection (confirmed, restored, or an unsubscribe is pending). */
  onServer: boolean;
  /** The id of its request waiting for an answer on this connection. */
  pending: number | undefined;
  /** References that asked for history and wait for a `from` request to be sent. */
  historyWanted: SubscriptionRef[];
  /**
   * Since when the server has delivered this subscription without interruption (its `subscribed`,
   * or the position a resume restored it from): a replayed message it matches after that was
   * delivered already (ESM/CJS builds).
   */
  coveredFrom?: StreamPosition;
}

/**
 * The client's wanted subscriptions, each held by references (one per `subscribe()` call):
 * identical subscriptions share one wire subscription, and one owner's release never
 * cancels another owner's reference. An entry whose references are gone stays until the
 * server confirmed its removal, so the client's view never diverges from the server's.
 */
export class SubscriptionRegistry {
  readonly #entries = new Map<string, SubscriptionEntry>();

  /** Adds one reference to `topic` + `filter`; a refused entry is replaced by a fresh one. */
  add(
    topic: string,
    filter: Filter | undefined,
    from: ReplayFrom | undefined,
    owned: boolean,
  ): SubscriptionRef {
    const key = canonicalSubscriptionKey(topic, filter);
    let entry = this.#entries.get(key);
    if (!entry || entry.refused) {
      entry = {
        key,
        topic,
        filter: normalizeFilter(filter),
        refs: [],
        from,
        sent: false,
        onServer: false,
        pending: undefined,
        historyWanted: [],
      };
      this.#entries.set(key, entry);
    }
    // The IIFE build's reference has only these four fields: the others are what only the ESM/CJS
    // builds use (the handle's `ready` and listeners, the history held for it).
    const ref = { entry, owned, from, released: false } as SubscriptionRef;
    if (FULL) {
      let resolve = (): void => {};
      let reject = (_error: ATPWebSocketError): void => {};
      const ready = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      ready.catch(() => {});
      Object.assign(ref, {
        settled: false,
        messageListeners: [],
        errorListeners: [],
        batchListeners: [],
        batch: undefined,
        backlog: undefined,
        held: undefined,
        ready,
        resolve,
        reject,
      });
    }
    entry.refs.push(ref);
    return ref;
  }

  /** Releases one reference; returns whether it was still held. */
  release(ref: SubscriptionRef): boolean {
    if (ref.released) return false;
    ref.released = true;
    const { refs, historyWanted } = ref.entry;
    refs.splice(refs.indexOf(ref), 1);
    if (FULL && historyWanted.includes(ref)) historyWanted.splice(historyWanted.indexOf(ref), 1);
    return true;
  }

  /**
   * The references `unsubscribe(topic, filter?)` releases: for each subscription of `topic`
   * (or exactly `topic` + `filter`), the newest one taken without a signal.
   */
  plainRefs(topic: string, filter?: Filter): SubscriptionRef[] {
    const key = filter === undefined ? undefined : canonicalSubscriptionKey(topic, filter);
    const found: SubscriptionRef[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.topic !== topic || (key !== undefined && entry.key !== key)) continue;
      const ref = [...entry.refs].reverse().find((r) => !r.owned);
      if (ref) found.push(ref);
    }
    return found;
  }

  /** The entry of a subscription, by topic and filter. */
  find(topic: string, filter?: Filter): SubscriptionEntry | undefined {
    return this.#entries.get(canonicalSubscriptionKey(topic, filter));
  }

  /** Every entry, wanted or waiting for its removal, in the order they were first made. */
  all(): SubscriptionEntry[] {
    return [...this.#entries.values()];
  }

  /** The wanted subscriptions: held by at least one reference and not refused. */
  list(): SubscriptionEntry[] {
    return this.all().filter((entry) => entry.refs.length > 0 && !entry.refused);
  }

  /** Forgets an entry nobody holds. */
  delete(entry: SubscriptionEntry): void {
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
  }

  /** Forgets which subscriptions were sent, for a fresh session (their `from` applies again). */
  resetSent(): void {
    for (const entry of this.#entries.values()) {
      entry.sent = false;
      if (FULL) entry.resumeFrom = undefined;
    }
  }
}
