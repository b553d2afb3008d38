import type { Socket } from 'node:net';
import type { DataMessage } from '@atp/ws-protocol';
import type { WebSocket } from 'ws';
import type { StreamEntry } from './broker.js';
import { supersedeKeyOf } from './supersede.js';

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

/** Serializes a stream entry's frame prefix once, for every connection it goes to. */
export function prepareEntry(epoch: string, entry: StreamEntry): PreparedEntry {
  const head = entry.json.slice(0, -1);
  return {
    epoch,
    offset: entry.offset,
    message: entry.message,
    prefix: Buffer.from(`${head},"epoch":${JSON.stringify(epoch)},"offset":${entry.offset},"sequence":`),
    supersedeKey: supersedeKeyOf(entry.message),
    publishedAt: entry.publishedAt,
    spareFrames: undefined,
  };
}

/** The message of a prepared entry for one connection's `sequence` (a text frame's payload). */
function payloadFor(entry: PreparedEntry, sequence: number): Buffer {
  const digits = digitCount(sequence);
  const payload = Buffer.allocUnsafe(entry.prefix.length + digits + 1);
  writeMessage(payload, 0, entry.prefix, sequence, digits);
  return payload;
}

/** A queued data message; `entry` is let go (undefined) once a newer one supersedes it. */
type DataItem = { kind: 'data'; entry: PreparedEntry | undefined };
type Item = DataItem | { kind: 'control'; frame: string } | { kind: 'gap' };

/** What a queued item costs besides its bytes (the item and its slot): counted against the hard limit. */
const ITEM_BYTES = 64;

/** A sequence number consumed without a message, in order with the frames around it. */
const GAP = 0;
type Due = PreparedEntry | string | typeof GAP;

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

// Frames are written at the end of the tick they were produced in: a runner
// publishing 10 messages in one tick costs each socket one write (one syscall)
// instead of 10. One setImmediate serves every outbox of the process.
let dueOutboxes: Outbox[] = [];

function flushDueOutboxes(): void {
  const outboxes = dueOutboxes;
  dueOutboxes = [];
  for (const outbox of outboxes) {
    try {
      outbox.writeDue();
    } catch {
      // Never expected; one broken connection must not keep the others' frames (or crash the process).
      // Cut it off: its client reconnects and resumes from history.
      outbox.clear();
      outbox.ws.terminate();
    }
  }
}

function scheduleWrite(outbox: Outbox): void {
  if (dueOutboxes.length === 0) setImmediate(flushDueOutboxes);
  dueOutboxes.push(outbox);
}

/** The TCP socket under a `ws` WebSocket when frames may be written to it directly, else `undefined`. */
function rawSocketOf(ws: WebSocket): Socket | undefined {
  // With an extension (permessage-deflate) ws transforms and may queue frames: only ws may write then.
  if (ws.extensions !== '') return undefined;
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  return socket && typeof socket.write === 'function' ? socket : undefined;
}

function isTls(socket: Socket): boolean {
  return (socket as Socket & { encrypted?: boolean }).encrypted === true;
}

/** Writes a server (unmasked) text frame header for `length` payload bytes at `at`; returns the payload's offset. */
function writeHeader(target: Buffer, at: number, length: number): number {
  target[at] = 0x81; // FIN, text
  if (length < 126) {
    target[at + 1] = length;
    return at + 2;
  }
  if (length < 65536) {
    target[at + 1] = 126;
    target.writeUInt16BE(length, at + 2);
    return at + 4;
  }
  target[at + 1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
  target.writeUInt32BE(length >>> 0, at + 6);
  return at + 10;
}

/** Writes the frame of a data message (header, prefix, `sequence`, `}`) at `at`; returns the offset after it. */
function writeDataFrame(target: Buffer, at: number, prefix: Buffer, sequence: number): number {
  const digits = digitCount(sequence);
  const payloadAt = writeHeader(target, at, prefix.length + digits + 1);
  return writeMessage(target, payloadAt, prefix, sequence, digits);
}

/** Writes a data message (its prefix, `sequence`, `}`) at `at`; returns the offset after it. */
function writeMessage(target: Buffer, at: number, prefix: Buffer, sequence: number, digits: number): number {
  target.set(prefix, at);
  const end = at + prefix.length;
  writeDigits(target, end, digits, sequence);
  target[end + digits] = 0x7d; // '}'
  return end + digits + 1;
}

/** Writes `value`'s `digits` decimal digits at `at`. */
function writeDigits(target: Buffer, at: number, digits: number, value: number): void {
  for (let d = at + digits - 1; d >= at; d--) {
    target[d] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/** Size of a server frame carrying `length` payload bytes. */
function frameSize(length: number): number {
  return length + (length < 126 ? 2 : length < 65536 ? 4 : 10);
}

/** Sequence numbers of one write, by position in its due list (reused: writes never overlap). */
const scratchSequences: number[] = [];
const EMPTY = Buffer.alloc(0);

function digitCount(value: number): number {
  let count = 1;
  while (value >= 10) {
    value = Math.floor(value / 10);
    count += 1;
  }
  return count;
}

/**
 * Per-connection outbound queue with back-pressure: frames are written at the
 * end of the tick while the bytes in flight stay under the soft limit; above
 * it they wait here, superseded progress is coalesced (only the newest per key
 * stays), and past the hard limit the connection is given up as a slow
 * consumer. Queues are only allocated once needed: an idle connection holds
 * little more than this object.
 */
export class Outbox {
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
  #byKey: Map<string, DataItem> | undefined;
  /** Queued items whose entry a newer one superseded: compacted away once they are many. */
  #superseded = 0;
  /** Data messages written on this connection. */
  #sent = 0;
  /** Superseded progress messages coalesced away on this connection. */
  #dropped = 0;
  #drainWaiters: Array<() => void> | undefined;
  #failed = false;
  /** `null` until the first write decides; `undefined` when frames go through `ws.send`. */
  #socket: Socket | undefined | null = null;

  /** The `sequence` of the last data message written (or skipped by a gap). */
  sequence = 0;

  constructor(
    readonly ws: WebSocket,
    readonly owner: OutboxOwner,
    /** The hub's counters, shared by all its outboxes. */
    readonly stats: OutboundStats,
    readonly softLimit: number,
    readonly hardLimit: number,
  ) {}

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

  /** Data messages waiting to be written (due in this tick or queued over the soft limit). */
  get queuedMessages(): number {
    let count =
      this.#dueOne === undefined || this.#dueOne === GAP || typeof this.#dueOne === 'string' ? 0 : 1;
    if (this.#dueAll) {
      count = 0;
      for (const due of this.#dueAll) if (due !== GAP && typeof due !== 'string') count += 1;
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
      if (older?.entry) {
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
    else this.sequence += 1;
  }

  pushControl(frame: string): void {
    if (this.#failed) return;
    if (!this.waiting && this.#writing() + this.#dueBytes < this.softLimit) {
      this.#addDue(frame, frame.length);
      return;
    }
    this.#enqueue({ kind: 'control', frame }, frame.length);
  }

  /** Resolves once the buffered bytes are under the soft limit (used to pace replays). */
  drained(): Promise<void> {
    if (this.bufferedBytes < this.softLimit || this.#failed) return Promise.resolve();
    return new Promise((resolve) => {
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
    } else if (all === undefined && one !== GAP && typeof one !== 'string') {
      // The common case of one message per tick.
      this.stats.sent += 1;
      this.#sent += 1;
      this.#writeSpare(socket, one, ++this.sequence);
    } else {
      this.#writeRaw(socket, all ?? [one]);
    }
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
    for (let i = 0; i < due.length; i++) {
      const frame = due[i] as Due;
      if (frame === GAP) {
        this.sequence += 1;
      } else if (typeof frame === 'string') {
        size += frameSize(Buffer.byteLength(frame));
      } else {
        const sequence = ++this.sequence;
        sequences[i] = sequence;
        size += frameSize(frame.prefix.length + digitCount(sequence) + 1);
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
        at = writeHeader(target, at, Buffer.byteLength(frame));
        at += target.write(frame, at);
      } else {
        at = writeDataFrame(target, at, frame.prefix, sequences[i] as number);
      }
    }
    this.#send(socket, target);
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
      if (socket.writableLength > 0) socket.write(EMPTY, () => this.#flush());
    }
  }

  /** Without a raw socket: one frame through `ws`. */
  #writeOne(frame: Due): void {
    if (frame === GAP) {
      this.sequence += 1;
      return;
    }
    let bytes: Buffer | string;
    if (typeof frame === 'string') {
      bytes = frame;
    } else {
      bytes = payloadFor(frame, ++this.sequence);
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
    if (this.bufferedBytes > this.hardLimit) {
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
          else this.sequence += 1;
        } else if (item.kind === 'control') {
          this.#queuedBytes -= item.frame.length;
          this.#addDue(item.frame, item.frame.length);
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
    if (this.#drainWaiters && this.bufferedBytes < this.softLimit) this.#resolveDrainWaiters();
  }
}
