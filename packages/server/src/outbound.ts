import type { DataMessage } from '@atp/ws-protocol';
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
  };
}

/** The complete frame of a prepared entry for one connection's `sequence`. */
export function frameFor(entry: PreparedEntry, sequence: number): Buffer {
  const digits = String(sequence);
  const frame = Buffer.allocUnsafe(entry.prefix.length + digits.length + 1);
  entry.prefix.copy(frame, 0);
  frame.write(digits, entry.prefix.length, 'latin1');
  frame[frame.length - 1] = 0x7d; // '}'
  return frame;
}

type Item =
  | { kind: 'data'; entry: PreparedEntry; dropped: boolean }
  | { kind: 'control'; frame: string }
  | { kind: 'gap' };

/** What an {@link Outbox} writes to and how it reports. */
export interface OutboxSink {
  /** Writes one text frame; `done` is called once it has left user space. */
  write(frame: Buffer | string, done: () => void): void;
  /** The next data message's sequence (called only when it is written). */
  nextSequence(): number;
  /** Consumes one sequence number without a message: a visible hole where messages may be lost. */
  skipSequence(): void;
  /** A superseded progress message was coalesced away. */
  dropped(): void;
  /** The hard limit was exceeded: the connection must be closed (1013). */
  overflow(): void;
}

/**
 * Per-connection outbound queue with back-pressure: frames are written
 * directly while the bytes in flight stay under the soft limit; above it they
 * wait here, superseded progress is coalesced (only the newest per key stays),
 * and past the hard limit the connection is given up as a slow consumer.
 */
export class Outbox {
  #items: Item[] = [];
  #head = 0;
  #queuedBytes = 0;
  #inFlight = 0;
  #byKey = new Map<string, Extract<Item, { kind: 'data' }>>();
  #drainWaiters: Array<() => void> = [];
  #failed = false;

  constructor(
    readonly sink: OutboxSink,
    readonly softLimit: number,
    readonly hardLimit: number,
  ) {}

  /** Bytes written but not yet flushed plus bytes waiting here. */
  get bufferedBytes(): number {
    return this.#inFlight + this.#queuedBytes;
  }

  get waiting(): boolean {
    return this.#head < this.#items.length;
  }

  pushData(entry: PreparedEntry): void {
    if (this.#failed) return;
    if (!this.waiting && this.#inFlight < this.softLimit) {
      this.#writeData(entry);
      return;
    }
    const key = entry.supersedeKey;
    if (key) {
      const older = this.#byKey.get(key);
      if (older && !older.dropped) {
        older.dropped = true;
        this.#queuedBytes -= older.entry.prefix.length;
        this.sink.dropped();
      }
    }
    const item = { kind: 'data' as const, entry, dropped: false };
    if (key) this.#byKey.set(key, item);
    this.#enqueue(item, entry.prefix.length);
  }

  /** Marks a hole in the numbering after everything queued so far (history lost under the client). */
  pushGap(): void {
    if (this.#failed) return;
    if (!this.waiting) this.sink.skipSequence();
    else this.#items.push({ kind: 'gap' });
  }

  pushControl(frame: string): void {
    if (this.#failed) return;
    if (!this.waiting && this.#inFlight < this.softLimit) {
      this.#write(frame, frame.length);
      return;
    }
    this.#enqueue({ kind: 'control', frame }, frame.length);
  }

  /** Resolves once the buffered bytes are under the soft limit (used to pace replays). */
  drained(): Promise<void> {
    if (this.bufferedBytes < this.softLimit || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Drops everything (the connection is gone). */
  clear(): void {
    this.#failed = true;
    this.#items = [];
    this.#head = 0;
    this.#byKey.clear();
    this.#queuedBytes = 0;
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  #enqueue(item: Item, bytes: number): void {
    this.#items.push(item);
    this.#queuedBytes += bytes;
    if (this.bufferedBytes > this.hardLimit) {
      this.clear();
      this.sink.overflow();
    }
  }

  #writeData(entry: PreparedEntry): void {
    const frame = frameFor(entry, this.sink.nextSequence());
    this.#write(frame, frame.length);
  }

  #write(frame: Buffer | string, bytes: number): void {
    this.#inFlight += bytes;
    this.sink.write(frame, () => {
      this.#inFlight -= bytes;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.waiting && this.#inFlight < this.softLimit && !this.#failed) {
      const item = this.#items[this.#head++] as Item;
      if (item.kind === 'gap') {
        this.sink.skipSequence();
      } else if (item.kind === 'control') {
        this.#queuedBytes -= item.frame.length;
        this.#write(item.frame, item.frame.length);
      } else if (!item.dropped) {
        this.#queuedBytes -= item.entry.prefix.length;
        if (item.entry.supersedeKey && this.#byKey.get(item.entry.supersedeKey) === item) {
          this.#byKey.delete(item.entry.supersedeKey);
        }
        this.#writeData(item.entry);
      }
    }
    if (!this.waiting && this.#head > 0) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.bufferedBytes < this.softLimit) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }
}
