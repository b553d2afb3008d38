import { GapReason } from '@atp/ws-protocol';
import type { ResumedMessage, ResumeMessage, StreamPosition, SubscribedMessage } from '@atp/ws-protocol';
import { FULL } from './features.js';
import type { SubscriptionEntry, SubscriptionRef } from './subscriptions.js';

/** A replay announced on this connection: whose it is, to whom it goes, and how many messages are still to come. */
export interface Replay {
  /** The subscription of a `from` request (none for the replay of a `resume`). */
  readonly entry: SubscriptionEntry | undefined;
  /** The references that asked for this history: only they get it (none: everyone). */
  readonly target: SubscriptionRef[] | undefined;
  left: number;
  /** Where the connection was up to date when a `from` replay was announced: what it may repeat ends there. */
  through?: StreamPosition;
}

/** Payload of the `sequence_gap` event: data messages `expected` … `received - 1` were not delivered. */
export interface SequenceGap {
  /** The sequence the client expected next. */
  readonly expected: number;
  /** The sequence that arrived (or will arrive) instead. */
  readonly received: number;
  /** Why: a resume that could not recover (`epoch_changed`, `history_truncated`, …) or a hole seen in `sequence`. */
  readonly reason: GapReason;
}

/** What {@link SessionTracker.onData} decided about one data message. */
export interface DataVerdict {
  /** False for a duplicate (its sequence, or its stream offset, was already delivered): drop it. */
  readonly deliver: boolean;
  /** A hole before this message, to report. */
  readonly gap?: SequenceGap;
  /** The replay this message belongs to, if any. */
  readonly replay?: Replay;
}

/** How many recently delivered offsets are remembered to drop a message delivered twice under two sequences. */
export const DEDUPE_WINDOW = 10_000;

function isAfter(next: StreamPosition, current: StreamPosition | undefined): boolean {
  return current === undefined || next.epoch !== current.epoch || next.offset > current.offset;
}

/**
 * The client side of resume (docs/DESIGN.md, "Resume"; docs/PROTOCOL.md, "Resuming after a reconnect"): the last delivered `sequence`
 * and the stream position the connection was up to date with, kept across
 * reconnects and reset only for a fresh session.
 *
 * A position is taken from `connected`, `subscribed`, `pong` and every data
 * message (each carries `epoch` + `offset`), never moving back within an epoch,
 * and not from control messages while a replay is still arriving (the replay's
 * own data messages move it forward instead).
 *
 * A `from` replay cut short by a disconnect cannot be resumed from the
 * connection's position (its history is older than that): the subscription
 * remembers the position of its last replayed message and asks again from there.
 */
export class SessionTracker {
  #last = 0;
  #expected = 1;
  #position: StreamPosition | undefined;
  /** Replays announced on this connection and how many of their messages are still to come, in arrival order. */
  #replays: Replay[] = [];
  /** Offsets delivered recently (of `#seenEpoch`, at most {@link DEDUPE_WINDOW}, oldest dropped first). */
  #seen = new Set<number>();
  /** The same offsets in arrival order, as a ring: the oldest is found in O(1) (a Set's first entry is not, after deletions). */
  #seenOrder: number[] = [];
  #seenNext = 0;
  #seenEpoch = '';
  /** Added to wire sequences of this connection when the server restarted its numbering (resume refused). */
  #base = 0;
  // #region ESM/CJS only
  /**
   * Offsets at or before this position (in its epoch) may have been missed: a gap came after
   * them, so a subscription held then does not prove they were delivered. After it, nothing was
   * missed up to the session's position.
   */
  floor: StreamPosition | undefined;
  /** A gap was reported; the next delivered message moves {@link SessionTracker.floor} up to it. */
  broken = false;
  // #endregion

  /** The last delivered sequence (0 before any). */
  get lastSequence(): number {
    return this.#last;
  }

  /** Forgets everything: the next connection is a fresh session. */
  reset(): void {
    this.#last = 0;
    this.#expected = 1;
    this.#position = undefined;
    this.#replays = [];
    this.#base = 0;
    if (FULL) {
      this.floor = undefined;
      this.broken = false;
    }
    this.#forgetSeen();
  }

  #forgetSeen(): void {
    this.#seen.clear();
    this.#seenOrder = [];
    this.#seenNext = 0;
  }

  /**
   * Called when a new connection starts: replay counts and numbering of the old one
   * are void; a subscription whose `from` replay was cut short is marked unsent, so it
   * is subscribed again from its last replayed message rather than resumed; references
   * whose own history was cut ask again from their last replayed message.
   */
  beginConnection(): void {
    if (FULL)
      for (const replay of this.#replays) {
        const { entry, target } = replay;
        if (!entry) {
          // A history requested for some references of a subscription the resume restores: they
          // ask again from their last replayed message.
          for (const ref of target ?? []) if (!ref.released) ref.entry.historyWanted.push(ref);
          continue;
        }
        entry.sent = false;
        // The references that were getting this history get the rest of it from the next request.
        for (const ref of target ?? []) if (!ref.released) entry.historyWanted.push(ref);
      }
    this.#replays = [];
    this.#base = 0;
  }

  /**
   * The server could not resume (it answered `resume` with an error) and numbers
   * this connection afresh from 1: continue the client's numbering after a one-number
   * gap, take `position` as the new one, and return the gap to report.
   */
  restart(position: StreamPosition, reason: GapReason): SequenceGap {
    const expected = this.#last + 1;
    this.#base = expected;
    this.#expected = expected + 1;
    this.#replays = [];
    this.#position = { epoch: position.epoch, offset: position.offset };
    if (FULL) this.broken = true;
    return { expected, received: expected + 1, reason };
  }

  /** Records the position carried by `connected`, `subscribed` or `pong`. */
  observePosition(position: StreamPosition): void {
    if (this.#replays.length > 0) return;
    if (isAfter(position, this.#position))
      this.#position = { epoch: position.epoch, offset: position.offset };
  }

  /** Announces that `count` replayed data messages follow (from `resumed`, or `subscribed.history` of `entry`). */
  expectReplay(count: number, entry?: SubscriptionEntry, target?: SubscriptionRef[]): void {
    if (count <= 0) return;
    const replay: Replay = { entry, target, left: count };
    if (FULL) replay.through = this.#position;
    this.#replays.push(replay);
  }

  /** The `resume` payload for a reconnect, or `undefined` when the session has no position yet. */
  resumePayload(
    subscriptions: ResumeMessage['payload']['subscriptions'],
  ): ResumeMessage['payload'] | undefined {
    if (!this.#position) return undefined;
    return { ...this.#position, sequence: this.#last, subscriptions };
  }

  // #region ESM/CJS only
  /** The stream position this connection has reached (what a resume would start from). */
  get position(): StreamPosition | undefined {
    return this.#position && { ...this.#position };
  }

  /**
   * Applies `subscribed`: its replay (if it asked for `from`) follows, so its
   * position (the head) counts only after that replay. Returns the gap to report
   * when that history was no longer complete (`expected` = `received` = the next sequence).
   */
  onSubscribed(
    payload: SubscribedMessage['payload'],
    entry?: SubscriptionEntry,
    target?: SubscriptionRef[],
  ): SequenceGap | undefined {
    const history = payload.history;
    if (history) this.expectReplay(history.replayed, entry, target);
    this.observePosition(payload);
    if (!history || history.complete) return undefined;
    const expected = this.#last + 1;
    return { expected, received: expected, reason: history.reason ?? GapReason.HistoryTruncated };
  }
  // #endregion

  /** Applies `resumed`; returns the gap to report when not every missed message follows. */
  onResumed(payload: ResumedMessage['payload']): SequenceGap | undefined {
    this.expectReplay(payload.replayed);
    const expected = this.#last + 1;
    // A server that ignored the resumed sequence and restarted its numbering must not make
    // every new message look like a duplicate: shift its numbers past a one-number gap.
    if (payload.next_sequence < expected) this.#base = expected + 1 - payload.next_sequence;
    const next = payload.next_sequence + this.#base;
    this.#expected = next;
    if (payload.recovered && next === expected) return undefined;
    // Not recovered: what follows is from the position the server answered with (a new epoch, say).
    if (FULL) this.#position = { epoch: payload.epoch, offset: payload.offset };
    if (FULL) this.broken = true;
    return { expected, received: next, reason: payload.reason ?? GapReason.SequenceHole };
  }

  /** Decides about one data message and records its sequence and position when it is delivered. */
  onData(wireSequence: number, position: StreamPosition): DataVerdict & { sequence: number } {
    const sequence = wireSequence + this.#base;
    if (sequence <= this.#last) return { deliver: false, sequence };
    // A hole during a replay ends it (the server cut it short: history was trimmed under it); this
    // message is already past it.
    if (sequence !== this.#expected) this.#replays.shift();
    const replay = this.#replays[0];
    if (FULL && replay) {
      const at = { epoch: position.epoch, offset: position.offset };
      if (replay.entry) replay.entry.resumeFrom = at;
      else for (const ref of replay.target ?? []) ref.from = at;
    }
    if (replay && --replay.left === 0) this.#replays.shift();
    const expected = this.#expected;
    if (FULL && sequence !== expected) this.broken = true;
    if (FULL && this.broken) {
      this.broken = false;
      this.floor = { epoch: position.epoch, offset: position.offset - 1 };
    }
    this.#last = sequence;
    this.#expected = sequence + 1;
    if (isAfter(position, this.#position))
      this.#position = { epoch: position.epoch, offset: position.offset };
    // A stream offset is one published message: seen twice (a replay overlapping what an earlier
    // connection already got through another subscription), it is dropped, its sequence consumed.
    if (position.epoch !== this.#seenEpoch) {
      this.#forgetSeen();
      this.#seenEpoch = position.epoch;
    }
    const deliver = !this.#seen.has(position.offset);
    if (deliver) {
      this.#seen.add(position.offset);
      if (this.#seenOrder.length < DEDUPE_WINDOW) this.#seenOrder.push(position.offset);
      else {
        this.#seen.delete(this.#seenOrder[this.#seenNext] as number);
        this.#seenOrder[this.#seenNext] = position.offset;
        this.#seenNext = (this.#seenNext + 1) % DEDUPE_WINDOW;
      }
    }
    if (sequence === expected) return { deliver, sequence, replay };
    return {
      deliver,
      sequence,
      replay,
      gap: { expected, received: sequence, reason: GapReason.SequenceHole },
    };
  }
}
