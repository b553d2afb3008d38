// The per-connection outbound queue: what is due this tick, what waits over
// the soft limit (with coalescing), the hard limit, and the numbering of data
// messages. Frame bytes are in frames.ts, the end-of-tick scheduler in
// write-scheduler.ts, the reach into `ws` in raw-socket.ts.
import type { Socket } from 'node:net';
import type { DataMessage } from '@atp/ws-protocol';
import type { WebSocket } from 'ws';
import type { StreamEntry } from './broker.js';
import {
  dataFrameSize,
  dataMessage,
  digitCount,
  frameSize,
  textFrameSize,
  writeDataFrame,
  writeDigits,
  writeTextFrame,
} from './frames.js';
import { isTls, rawSocketOf } from './raw-socket.js';
import { supersedeKeyOf } from './supersede.js';
import { type ScheduledWriter, scheduleWrite } from './write-scheduler.js';

const EMPTY_BUFFER = Buffer.alloc(0);

/**
 * A data message ready to go out: serialized once per publish, with the
 * per-connection `sequence` spliced in at the end when it is written.
 */
export interface PreparedEntry {
  readonly epoch: string;
  readonly offset: number;
  readonly message: DataMessage;
  /** `{"type":…,"payload":…,"epoch":"…","offset":N,"sequence":` as UTF-8. */
  readonly prefix: Buffer;
  readonly supersedeKey: string | undefined;
  readonly publishedAt: number | undefined;
  /**
   * Complete frames of this entry that no write holds, by the number of
   * digits of their `sequence`: the next connection whose sequence has as many
   * digits rewrites them and writes the same buffer, so a fan-out allocates
   * and copies a frame once rather than per connection. See {@link Outbox}.
   */
  spareFrames: Array<Buffer | undefined> | undefined;
}

/** `,"epoch":"<epoch>","offset":` of the last epoch seen: an epoch changes rarely, so one slot is enough. */
let epochSuffix: { epoch: string; bytes: Buffer } = { epoch: '', bytes: EMPTY_BUFFER };
const SEQUENCE_KEY = Buffer.from(',"sequence":');

/**
 * Serializes a stream entry's frame prefix once, for every connection it goes to. The prefix is
 * written straight into its buffer, piece by piece: no intermediate strings (a slice, a
 * concatenation and its flattened copy were most of the garbage of a message going to one client).
 */
export function prepareEntry(epoch: string, entry: StreamEntry): PreparedEntry {
  if (epochSuffix.epoch !== epoch) {
    epochSuffix = { epoch, bytes: Buffer.from(`,"epoch":${JSON.stringify(epoch)},"offset":`) };
  }
  const suffix = epochSuffix.bytes;
  const json = entry.json;
  // The JSON of an object ends with its one-byte `}`, which the suffix replaces.
  const head = Buffer.byteLength(json) - 1;
  const offsetDigits = digitCount(entry.offset);
  const prefix = Buffer.allocUnsafe(head + suffix.length + offsetDigits + SEQUENCE_KEY.length);
  prefix.write(json, 0);
  suffix.copy(prefix, head);
  const digitsAt = head + suffix.length;
  writeDigits(prefix, digitsAt, offsetDigits, entry.offset);
  SEQUENCE_KEY.copy(prefix, digitsAt + offsetDigits);
  return {
    epoch,
    offset: entry.offset,
    message: entry.message,
    prefix,
    supersedeKey: entry.supersedeKey !== undefined ? entry.supersedeKey : supersedeKeyOf(entry.message),
    publishedAt: entry.publishedAt,
    spareFrames: undefined,
  };
}

/** A queued data message; `entry` is let go (undefined) once a newer one supersedes it. */
type DataItem = {
  kind: 'data';
  entry: PreparedEntry | undefined;
  /** The oldest queued message of its supersede key: never dropped (see {@link Outbox.pushData}). */
  oldest?: true;
};

/**
 * A `resource` answer: a control frame with a budget of its own (see
 * {@link Outbox.pushAnswer}), counted until its bytes are flushed.
 */
class AnswerFrame {
  constructor(
    readonly frame: string,
    /** UTF-8 bytes of `frame`. */
    readonly bytes: number,
  ) {}
}

type Item =
  | DataItem
  | { kind: 'control'; frame: string }
  | { kind: 'answer'; answer: AnswerFrame }
  | { kind: 'gap' };

/** What a queued item costs besides its bytes (the item and its slot): counted against the hard limit. */
const ITEM_BYTES = 64;

/** A sequence number consumed without a message, in order with the frames around it. */
const GAP = 0;
type Due = PreparedEntry | string | AnswerFrame | typeof GAP;

/** Counts kept by every outbox of a hub as plain numbers (the metrics read them when scraped). */
export interface OutboundStats {
  /** Data messages written. */
  sent: number;
  /** Superseded progress messages coalesced away for slow consumers. */
  dropped: number;
}

/** The connection an {@link Outbox} belongs to. */
export interface OutboxOwner {
  /** The hard limit was exceeded: the connection must be closed (1013). */
  outboxOverflowed(): void;
}

function isEntry(due: Due | undefined): due is PreparedEntry {
  return due !== undefined && due !== GAP && typeof due !== 'string' && !(due instanceof AnswerFrame);
}

/** Sequence numbers of one write, by position in its due list (reused: writes never overlap). */
const scratchSequences: number[] = [];

/**
 * Per-connection outbound queue with back-pressure: frames are written at the
 * end of the tick while the bytes in flight stay under the soft limit; above
 * it they wait here, superseded progress is coalesced (only the oldest and the
 * newest queued per key stay), and past the hard limit the connection is given up as a slow
 * consumer. Queues are only allocated once needed: an idle connection holds
 * little more than this object.
 */
export class Outbox implements ScheduledWriter {
  /** Waiting items (over the soft limit), from `#head` on. */
  #items: Item[] | undefined;
  #head = 0;
  #queuedBytes = 0;
  /** Frames to write at the end of this tick, in order. */
  #dueOne: Due | undefined;
  /** All the frames due, in order, once there are several (`#dueOne` is the first). */
  #dueAll: Due[] | undefined;
  #dueBytes = 0;
  /** Bytes handed to `ws.send` and not yet flushed (only without a raw socket). */
  #inFlight = 0;
  /**
   * Bytes of `resource` answers due, queued or written and not yet flushed:
   * bounded by the hard limit on their own, and not counted toward it.
   */
  #answerBytes = 0;
  #byKey: Map<string, DataItem> | undefined;
  /** Queued items whose entry a newer one superseded: compacted away once they are many. */
  #superseded = 0;
  /** Data messages written on this connection. */
  #sent = 0;
  /** Superseded progress messages coalesced away on this connection. */
  #dropped = 0;
  #drainWaiters: Array<() => void> | undefined;
  /** What {@link Outbox.drained}'s waiters wait for the buffered bytes to be under. */
  #drainBelow = 0;
  #failed = false;
  /** `null` until the first write decides; `undefined` when frames go through `ws.send`. */
  #socket: Socket | undefined | null = null;

  /** The `sequence` of the last data message written (or skipped by a gap): see {@link Outbox.#nextSequence}. */
  #sequence = 0;

  constructor(
    readonly ws: WebSocket,
    readonly owner: OutboxOwner,
    /** The hub's counters, shared by all its outboxes. */
    readonly stats: OutboundStats,
    readonly softLimit: number,
    readonly hardLimit: number,
  ) {}

  /** The `sequence` of the last data message written (or skipped by a gap). */
  get sequence(): number {
    return this.#sequence;
  }

  /** Bytes written but not yet flushed plus bytes waiting here. */
  get bufferedBytes(): number {
    return this.#writing() + this.#dueBytes + this.#queuedBytes;
  }

  get waiting(): boolean {
    return this.#items !== undefined && this.#head < this.#items.length;
  }

  /** Items waiting over the soft limit (superseded ones included until compacted). */
  get queuedItems(): number {
    return this.#items ? this.#items.length - this.#head : 0;
  }

  /** Bytes of `resource` answers not yet flushed (see {@link Outbox.pushAnswer}). */
  get answerBytes(): number {
    return this.#answerBytes;
  }

  /** Data messages waiting to be written (due in this tick or queued over the soft limit). */
  get queuedMessages(): number {
    let count = isEntry(this.#dueOne) ? 1 : 0;
    if (this.#dueAll) {
      count = 0;
      for (const due of this.#dueAll) if (isEntry(due)) count += 1;
    }
    const items = this.#items;
    if (items) {
      for (let i = this.#head; i < items.length; i++) {
        const item = items[i] as Item;
        if (item.kind === 'data' && item.entry) count += 1;
      }
    }
    return count;
  }

  /** When the oldest data message waiting here was published (ms since the epoch), if any is waiting. */
  get oldestQueuedAt(): number | undefined {
    const items = this.#items;
    if (items) {
      for (let i = this.#head; i < items.length; i++) {
        const item = items[i] as Item;
        if (item.kind === 'data' && item.entry) return item.entry.publishedAt;
      }
    }
    return undefined;
  }

  /** Data messages written on this connection. */
  get sentCount(): number {
    return this.#sent;
  }

  /** Superseded progress messages coalesced away on this connection. */
  get droppedCount(): number {
    return this.#dropped;
  }

  pushData(entry: PreparedEntry): void {
    if (this.#failed) return;
    if (!this.waiting && this.#writing() + this.#dueBytes < this.softLimit) {
      this.#addDue(entry, entry.prefix.length);
      return;
    }
    const key = entry.supersedeKey;
    const item: DataItem = { kind: 'data', entry };
    if (key) {
      this.#byKey ??= new Map();
      const older = this.#byKey.get(key);
      // The oldest queued progress of a test (suite) stays: what was queued after it (a delta, an
      // event of that test) may need it, as when it is the progress that creates the test for a
      // reader. Only the ones between it and the newest are dropped.
      if (!older) item.oldest = true;
      else if (older.entry && !older.oldest) {
        // The superseded message is let go at once; its slot costs ITEM_BYTES until compacted.
        this.#queuedBytes -= older.entry.prefix.length;
        older.entry = undefined;
        this.#superseded += 1;
        this.#dropped += 1;
        this.stats.dropped += 1;
      }
      this.#byKey.set(key, item);
    }
    this.#enqueue(item, entry.prefix.length);
    this.#compactSuperseded();
  }

  /** Marks a hole in the numbering after everything queued so far (history lost under the client). */
  pushGap(): void {
    if (this.#failed) return;
    if (this.waiting) this.#enqueue({ kind: 'gap' }, 0);
    else if (this.#dueOne !== undefined) this.#addDue(GAP, 0);
    else this.#nextSequence();
  }

  /**
   * Continues a resuming client's numbering: the last data message it has is
   * `sequence`; with `gap`, one number is skipped so that the hole shows in
   * the numbering. The connection calls it once, while no data message is
   * due or queued. Returns the `sequence` the next data message will carry.
   */
  resumeAfter(sequence: number, gap: boolean): number {
    this.#sequence = sequence;
    if (gap) this.#nextSequence();
    return this.#sequence + 1;
  }

  pushControl(frame: string): void {
    if (this.#failed) return;
    if (!this.waiting && this.#writing() + this.#dueBytes < this.softLimit) {
      this.#addDue(frame, frame.length);
      return;
    }
    this.#enqueue({ kind: 'control', frame }, frame.length);
  }

  /**
   * Queues a `resource` answer (`bytes` long), in order with the other frames,
   * unless it is larger than the hard limit or, with the answers not yet
   * flushed, would pass it: then returns false and queues nothing. Answers do
   * not count toward the hard limit of the rest (a client asking for a large
   * snapshot is no slow consumer): they have this budget of their own.
   */
  pushAnswer(frame: string, bytes: number): boolean {
    if (this.#failed) return true;
    if (bytes > this.hardLimit || this.#answerBytes + bytes > this.hardLimit) return false;
    this.#answerBytes += bytes;
    const answer = new AnswerFrame(frame, bytes);
    if (!this.waiting && this.#writing() + this.#dueBytes < this.softLimit) {
      this.#addDue(answer, bytes);
      return true;
    }
    this.#items ??= [];
    this.#items.push({ kind: 'answer', answer });
    this.#queuedBytes += bytes + ITEM_BYTES;
    return true;
  }

  /** Resolves once the buffered bytes are under `below`, at most the soft limit (used to pace replays). */
  drained(below = this.softLimit): Promise<void> {
    const limit = Math.min(below, this.softLimit);
    if (this.bufferedBytes < limit || this.#failed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drainBelow = this.#drainWaiters ? Math.min(this.#drainBelow, limit) : limit;
      this.#drainWaiters ??= [];
      this.#drainWaiters.push(resolve);
    });
  }

  /**
   * Drops everything queued (the connection is closing or gone). Frames
   * already due in this tick still go out first while the socket is open, as
   * if they had been written at once: a closing frame comes after them.
   */
  clear(): void {
    if (!this.#failed) this.writeDue();
    this.#abandon();
  }

  /** `writeDue` threw: this connection is cut off, its client reconnects and resumes from history. */
  writeFailed(): void {
    this.clear();
    this.ws.terminate();
  }

  /** Writes the frames due in this tick (called once per tick by the scheduler). */
  writeDue(): void {
    const one = this.#dueOne;
    const all = this.#dueAll;
    if (one === undefined || this.#failed) return;
    this.#dueOne = undefined;
    this.#dueAll = undefined;
    this.#dueBytes = 0;
    if (this.ws.readyState !== 1) return;
    if (this.#socket === null) this.#socket = rawSocketOf(this.ws);
    const socket = this.#socket;
    if (!socket) {
      for (const frame of all ?? [one]) this.#writeOne(frame);
    } else if (all === undefined && isEntry(one)) {
      // The common case of one message per tick.
      this.stats.sent += 1;
      this.#sent += 1;
      this.#writeSpare(socket, one, this.#nextSequence());
    } else {
      this.#writeRaw(socket, all ?? [one]);
    }
  }

  /**
   * Assigns the next `sequence`: the one place the numbering moves, for a
   * data message written and for a gap alike, in the order they go out.
   */
  #nextSequence(): number {
    this.#sequence += 1;
    return this.#sequence;
  }

  /** Bytes written and not yet flushed to the kernel. */
  #writing(): number {
    return this.#socket ? this.#socket.writableLength : this.#inFlight;
  }

  #addDue(frame: Due, bytes: number): void {
    if (this.#dueOne === undefined) {
      this.#dueOne = frame;
      scheduleWrite(this);
    } else if (this.#dueAll) {
      this.#dueAll.push(frame);
    } else {
      this.#dueAll = [this.#dueOne, frame];
    }
    this.#dueBytes += bytes;
  }

  /** Frames every due message (numbering data messages in order) into one buffer: one write, one syscall. */
  #writeRaw(socket: Socket, due: Due[]): void {
    // First pass: number the data messages in order (gaps included) and size the buffer exactly.
    const sequences = scratchSequences;
    let size = 0;
    let messages = 0;
    let answers = 0;
    for (let i = 0; i < due.length; i++) {
      const frame = due[i] as Due;
      if (frame === GAP) {
        this.#nextSequence();
      } else if (typeof frame === 'string') {
        size += textFrameSize(frame);
      } else if (frame instanceof AnswerFrame) {
        size += textFrameSize(frame.frame);
        answers += frame.bytes;
      } else {
        const sequence = this.#nextSequence();
        sequences[i] = sequence;
        size += dataFrameSize(frame.prefix, sequence);
        messages += 1;
      }
    }
    if (size === 0) return;
    this.stats.sent += messages;
    this.#sent += messages;
    const target = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < due.length; i++) {
      const frame = due[i] as Due;
      if (frame === GAP) continue;
      if (typeof frame === 'string') {
        at = writeTextFrame(target, at, frame);
      } else if (frame instanceof AnswerFrame) {
        at = writeTextFrame(target, at, frame.frame);
      } else {
        at = writeDataFrame(target, at, frame.prefix, sequences[i] as number);
      }
    }
    if (answers > 0) {
      // The answers count until the kernel has them: released by this write's callback.
      socket.write(target, () => {
        this.#releaseAnswers(answers);
        this.#flush();
      });
      return;
    }
    this.#send(socket, target);
  }

  #releaseAnswers(bytes: number): void {
    if (!this.#failed) this.#answerBytes -= bytes;
  }

  /**
   * Writes a lone data frame in one of the entry's spare frames. A buffer may
   * be rewritten once no write holds it: when the socket's `writableLength` is
   * 0 after the write, Node handed every byte to the kernel at once and kept
   * no reference (a pending or partial write counts its bytes until done).
   * Such a buffer goes back to the spares; one a write still holds does not.
   * TLS sockets encrypt through their own buffering: their frames are not reused.
   */
  #writeSpare(socket: Socket, entry: PreparedEntry, sequence: number): void {
    const digits = digitCount(sequence);
    entry.spareFrames ??= [];
    const spares = entry.spareFrames;
    let frame = spares[digits];
    if (frame === undefined) {
      frame = Buffer.allocUnsafe(frameSize(entry.prefix.length + digits + 1));
      writeDataFrame(frame, 0, entry.prefix, sequence);
    } else {
      spares[digits] = undefined;
      writeDigits(frame, frame.length - 1 - digits, digits, sequence);
    }
    this.#send(socket, frame);
    if (socket.writableLength === 0 && !isTls(socket)) spares[digits] = frame;
  }

  /**
   * The socket counts the bytes in flight (`writableLength`). A write completed at once needs no
   * callback (and Node then schedules nothing); one left pending must tell us when it is flushed,
   * so that waiting items move on: the last pending write always carries a callback.
   */
  #send(socket: Socket, data: Buffer): void {
    if (socket.writableLength > 0 || this.waiting || this.#drainWaiters) {
      socket.write(data, () => this.#flush());
    } else {
      socket.write(data);
      if (socket.writableLength > 0) socket.write(EMPTY_BUFFER, () => this.#flush());
    }
  }

  /** Without a raw socket: one frame through `ws`. */
  #writeOne(frame: Due): void {
    if (frame === GAP) {
      this.#nextSequence();
      return;
    }
    let bytes: Buffer | string;
    if (typeof frame === 'string') {
      bytes = frame;
    } else if (frame instanceof AnswerFrame) {
      const answer = frame;
      this.#inFlight += answer.frame.length;
      this.ws.send(answer.frame, { binary: false }, () => {
        this.#inFlight -= answer.frame.length;
        this.#releaseAnswers(answer.bytes);
        this.#flush();
      });
      return;
    } else {
      bytes = dataMessage(frame.prefix, this.#nextSequence());
      this.stats.sent += 1;
      this.#sent += 1;
    }
    this.#inFlight += bytes.length;
    this.ws.send(bytes, { binary: false }, () => {
      this.#inFlight -= bytes.length;
      this.#flush();
    });
  }

  #abandon(): void {
    this.#failed = true;
    this.#dueOne = undefined;
    this.#dueAll = undefined;
    this.#dueBytes = 0;
    this.#items = undefined;
    this.#head = 0;
    this.#byKey = undefined;
    this.#queuedBytes = 0;
    this.#superseded = 0;
    this.#answerBytes = 0;
    this.#resolveDrainWaiters();
  }

  #resolveDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = undefined;
    if (waiters) for (const resolve of waiters) resolve();
  }

  #enqueue(item: Item, bytes: number): void {
    this.#items ??= [];
    this.#items.push(item);
    this.#queuedBytes += bytes + ITEM_BYTES;
    // Answers have a budget of their own (see pushAnswer).
    if (this.bufferedBytes - this.#answerBytes > this.hardLimit) {
      this.#abandon();
      this.owner.outboxOverflowed();
    }
  }

  /** Removes superseded items from the queue once they are most of it, so that their slots are freed too. */
  #compactSuperseded(): void {
    const items = this.#items;
    if (!items || this.#superseded < 64 || this.#superseded * 2 < items.length - this.#head) return;
    const kept: Item[] = [];
    for (let i = this.#head; i < items.length; i++) {
      const item = items[i] as Item;
      if (item.kind !== 'data' || item.entry) kept.push(item);
    }
    this.#queuedBytes -= this.#superseded * ITEM_BYTES;
    this.#superseded = 0;
    this.#items = kept;
    this.#head = 0;
  }

  /** Moves waiting items to the frames due while the bytes in flight stay under the soft limit. */
  #flush(): void {
    const items = this.#items;
    if (items) {
      while (
        this.#head < items.length &&
        this.#writing() + this.#dueBytes < this.softLimit &&
        !this.#failed
      ) {
        const item = items[this.#head++] as Item;
        this.#queuedBytes -= ITEM_BYTES;
        if (item.kind === 'gap') {
          if (this.#dueOne !== undefined) this.#addDue(GAP, 0);
          else this.#nextSequence();
        } else if (item.kind === 'control') {
          this.#queuedBytes -= item.frame.length;
          this.#addDue(item.frame, item.frame.length);
        } else if (item.kind === 'answer') {
          this.#queuedBytes -= item.answer.bytes;
          this.#addDue(item.answer, item.answer.bytes);
        } else if (item.entry) {
          this.#queuedBytes -= item.entry.prefix.length;
          const key = item.entry.supersedeKey;
          if (key && this.#byKey?.get(key) === item) this.#byKey.delete(key);
          this.#addDue(item.entry, item.entry.prefix.length);
        } else {
          this.#superseded -= 1;
        }
      }
      if (this.#head >= items.length) {
        this.#items = undefined;
        this.#head = 0;
        if (this.#byKey?.size === 0) this.#byKey = undefined;
      } else if (this.#head > 1024 && this.#head * 2 > items.length) {
        this.#items = items.slice(this.#head);
        this.#head = 0;
      }
    }
    if (this.#drainWaiters && this.bufferedBytes < this.#drainBelow) this.#resolveDrainWaiters();
  }
}
