import { matchesSubscription, type ReplayFrom, type StreamPosition } from '@atp/ws-protocol';
import type { Delivery, SubscriptionEntry, SubscriptionRef } from './subscriptions.js';

/** How many delivered messages the client keeps to replay history locally. */
export const HISTORY_SIZE = 10_000;

/** Calls the message listeners of one reference. */
export type CallListeners = (ref: SubscriptionRef, delivery: Delivery) => void;

/**
 * Per-subscription delivery, and the last {@link HISTORY_SIZE} data messages this client
 * delivered in the current epoch. The server sends a connection each message at most once,
 * so a second subscriber asking for history gets what this client already received from
 * here, merged in offset order with what the server replays to it, before newer messages.
 *
 * The IIFE browser build replaces this module with `history.browser.ts`, which keeps and
 * routes nothing: per-subscription `message` events and the local replay are ESM/CJS-only.
 */
export class DeliveredHistory {
  // A ring of the frames' text with their offsets and delivered sequences: no object per message
  // for the garbage collector, and O(1) to add one and drop the oldest.
  #frames: string[] = [];
  #offsets: number[] = [];
  #sequences: number[] = [];
  /** Where the next message goes once the ring is full (it replaces the oldest). */
  #next = 0;
  #epoch = '';
  /** The newest offset of this epoch that the ring no longer holds (0: it dropped none). */
  #droppedThrough = 0;

  /** A new reference asked for history after `from`: what is kept is its backlog, newer messages wait. */
  attach(ref: SubscriptionRef, from: ReplayFrom): void {
    const floor = from !== 'start' && from.epoch === this.#epoch ? from.offset : 0;
    const backlog: Delivery[] = [];
    this.#frames.forEach((frame, index) => {
      const offset = this.#offsets[index] ?? 0;
      if (offset <= floor) return;
      const message = JSON.parse(frame) as Delivery['message'];
      if (!matchesSubscription(message, ref.entry)) return;
      const meta = { sequence: this.#sequences[index], type: message.type, epoch: this.#epoch, offset };
      backlog.push({ message, meta: meta as Delivery['meta'] });
    });
    ref.backlog = backlog.sort((a, b) => a.meta.offset - b.meta.offset);
    ref.held = [];
    // Messages it may need are gone from here; unless the server sends them again, its history is short.
    ref.short = this.#droppedThrough > floor ? this.#droppedThrough : undefined;
  }

  /**
   * Keeps one delivered message and hands it to the references it belongs to: the `target`
   * of the history replay it is part of, else every reference of the matching `entries`.
   */
  deliver(
    delivery: Delivery,
    frame: string,
    target: SubscriptionRef[] | undefined,
    entries: SubscriptionEntry[],
    call: CallListeners,
  ): void {
    const { epoch, offset } = delivery.meta;
    if (epoch !== this.#epoch) {
      this.clear();
      this.#epoch = epoch;
    }
    const index = this.#frames.length < HISTORY_SIZE ? this.#frames.length : this.#next;
    if (index < this.#frames.length) this.#droppedThrough = this.#offsets[index] ?? 0;
    this.#frames[index] = frame;
    this.#offsets[index] = offset;
    this.#sequences[index] = delivery.meta.sequence;
    this.#next = (index + 1) % HISTORY_SIZE;
    if (target) {
      for (const ref of target) if (!ref.released) this.#toRef(ref, delivery, true, call);
      return;
    }
    for (const entry of entries) {
      if (entry.refs.length === 0 || !matchesSubscription(delivery.message, entry)) continue;
      for (const ref of [...entry.refs]) this.#toRef(ref, delivery, false, call);
    }
  }

  /**
   * Whether a message of a `from` replay was delivered before: one of `entries` that matches it
   * was held without interruption from before it up to `through` (where the connection was when
   * the replay began), and no gap since `floor` may have hidden it.
   */
  deliveredBefore(
    message: StreamPosition & { type: string; payload: unknown },
    through: StreamPosition | undefined,
    floor: StreamPosition | undefined,
    entries: Iterable<SubscriptionEntry>,
  ): boolean {
    const { epoch, offset } = message;
    if (!through || through.epoch !== epoch || offset > through.offset) return false;
    if (floor && floor.epoch === epoch && offset <= floor.offset) return false;
    for (const entry of entries) {
      const since = entry.coveredFrom;
      if (since?.epoch === epoch && offset > since.offset && matchesSubscription(message as never, entry))
        return true;
    }
    return false;
  }

  /**
   * A replayed message this client delivered before (not kept again, not for other references):
   * each of `target`, the references that asked for this history, gets it once.
   */
  redeliver(target: SubscriptionRef[], delivery: Delivery, call: CallListeners): void {
    for (const ref of target) if (!ref.released) this.#toRef(ref, delivery, true, call);
  }

  /**
   * The history of `ref` is complete: its backlog, then what it held back, are delivered in order.
   * Returns whether it is short: messages it asked for were dropped from here and the server did
   * not send them again (it sends a connection each message once).
   */
  complete(ref: SubscriptionRef, call: CallListeners): boolean {
    const short =
      ref.short !== undefined && !(ref.replayedFrom !== undefined && ref.replayedFrom <= ref.short);
    ref.short = ref.replayedFrom = undefined;
    // Kept messages of an epoch the stream has since lost are not part of its history.
    const backlog = (ref.backlog ?? []).filter((delivery) => delivery.meta.epoch === this.#epoch);
    const rest = [...backlog, ...(ref.held ?? [])];
    ref.backlog = ref.held = undefined;
    if (!ref.released) for (const delivery of rest) call(ref, delivery);
    return short;
  }

  /** The stream is at `epoch` (a `connected`): what was kept of another epoch is of a lost history. */
  observeEpoch(epoch: string): void {
    if (epoch === this.#epoch) return;
    this.clear();
    this.#epoch = epoch;
  }

  /** Forgets everything (a fresh session). */
  clear(): void {
    this.#frames = [];
    this.#offsets = [];
    this.#sequences = [];
    this.#next = 0;
    this.#droppedThrough = 0;
  }

  /** Delivers to one reference: older messages of its backlog first; newer ones wait while its history comes. */
  #toRef(ref: SubscriptionRef, delivery: Delivery, replayed: boolean, call: CallListeners): void {
    if (replayed) ref.replayedFrom ??= delivery.meta.offset;
    if (!replayed && ref.held) {
      ref.held.push(delivery);
      return;
    }
    const backlog = ref.backlog ?? [];
    if (backlog[0] && backlog[0].meta.epoch !== delivery.meta.epoch) backlog.length = 0;
    while (backlog[0] && backlog[0].meta.offset <= delivery.meta.offset) {
      const kept = backlog.shift() as Delivery;
      // The server sent again what the backlog holds (a new connection): once is enough.
      if (kept.meta.offset < delivery.meta.offset) call(ref, kept);
    }
    call(ref, delivery);
  }
}
