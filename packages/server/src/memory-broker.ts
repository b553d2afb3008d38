import { randomBytes } from 'node:crypto';
import { type DataMessage, GapReason, type ReplayFrom } from '@atp/ws-protocol';
import type { Broker, HistoryRead, ReadOptions, StreamBatch, StreamEntry } from './broker.js';
import { supersedeKeyOf } from './supersede.js';

/** Options of {@link MemoryBroker}. */
export interface MemoryBrokerOptions {
  /** Most bytes of history kept (serialized size); the oldest entries go first. @default 67108864 (64 MiB) */
  maxBytes?: number;
  /** Most entries of history kept. @default 1000000 */
  maxMessages?: number;
  /** Entries younger than this are never compacted, ms. @default 120000 */
  recentWindowMs?: number;
  /** The newest this many entries are never compacted. @default 10000 */
  recentMessages?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

interface KeptEntry extends StreamEntry {
  readonly publishedAt: number;
  /** For progress messages: the key whose newest entry supersedes older ones. */
  readonly supersedeKey: string | undefined;
  /** Bytes of `json` in UTF-8: what counts toward `maxBytes`. */
  readonly size: number;
}

/**
 * The default broker: one stream kept in this process's memory, bounded in
 * bytes. Older history is compacted by dropping superseded progress messages
 * (only the oldest and the newest `test_progress` per test and
 * `suite_progress` per suite survive); the recent window is kept in full. A new broker (a restarted
 * process) has a new epoch, so positions from before are recognised as stale.
 */
export class MemoryBroker implements Broker {
  readonly epoch: string = randomBytes(6).toString('base64url');
  readonly #maxBytes: number;
  readonly #maxMessages: number;
  readonly #recentWindowMs: number;
  readonly #recentMessages: number;
  readonly #now: () => number;
  #entries: KeptEntry[] = [];
  #bytes = 0;
  #head = 0;
  /** Every entry with an offset up to this one has been dropped for space: reading from before it is a gap. */
  #truncatedThrough = 0;
  #newestBySupersedeKey = new Map<string, number>();
  #listeners = new Set<(batch: StreamBatch) => void>();
  #closed = false;

  constructor(options: MemoryBrokerOptions = {}) {
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#maxMessages = options.maxMessages ?? 1_000_000;
    this.#recentWindowMs = options.recentWindowMs ?? 120_000;
    this.#recentMessages = options.recentMessages ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes of history currently kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of entries currently kept. */
  get size(): number {
    return this.#entries.length;
  }

  async publish(messages: readonly DataMessage[]): Promise<void> {
    if (this.#closed) throw new Error('broker is closed');
    if (messages.length === 0) return;
    const at = this.#now();
    const entries: KeptEntry[] = [];
    for (const message of messages) {
      const json = JSON.stringify(message);
      const supersedeKey = supersedeKeyOf(message);
      const size = Buffer.byteLength(json);
      const entry: KeptEntry = { offset: ++this.#head, message, json, publishedAt: at, supersedeKey, size };
      if (supersedeKey) this.#newestBySupersedeKey.set(supersedeKey, entry.offset);
      this.#entries.push(entry);
      this.#bytes += size;
      entries.push(entry);
    }
    this.#enforceLimits();
    const batch: StreamBatch = { epoch: this.epoch, entries };
    for (const listener of this.#listeners) listener(batch);
  }

  async subscribe(listener: (batch: StreamBatch) => void): Promise<() => Promise<void>> {
    this.#listeners.add(listener);
    listener({ epoch: this.epoch, entries: [], head: this.#head });
    return async () => {
      this.#listeners.delete(listener);
    };
  }

  async read(from: ReplayFrom, options: ReadOptions = {}): Promise<HistoryRead> {
    const head = this.#head;
    const page = (start: number) =>
      options.limit === undefined
        ? this.#entries.slice(start)
        : this.#entries.slice(start, start + Math.max(1, options.limit));
    if (from === 'start') return { epoch: this.epoch, head, entries: page(0), complete: true };
    if (from.epoch !== this.epoch) {
      return { epoch: this.epoch, head, entries: page(0), complete: false, reason: GapReason.EpochChanged };
    }
    if (from.offset > head) {
      return { epoch: this.epoch, head, entries: [], complete: false, reason: GapReason.UnknownPosition };
    }
    const entries = page(this.#indexAfter(from.offset));
    if (from.offset < this.#truncatedThrough) {
      return { epoch: this.epoch, head, entries, complete: false, reason: GapReason.HistoryTruncated };
    }
    return { epoch: this.epoch, head, entries, complete: true };
  }

  async position(): Promise<{ epoch: string; offset: number }> {
    return { epoch: this.epoch, offset: this.#head };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }

  /** Index of the first kept entry with an offset greater than `offset` (binary search). */
  #indexAfter(offset: number): number {
    let low = 0;
    let high = this.#entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#entries[mid] as KeptEntry).offset <= offset) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  #enforceLimits(): void {
    if (this.#bytes <= this.#maxBytes && this.#entries.length <= this.#maxMessages) return;
    this.#compact();
    // Trim to 90% of the limits so that the O(n) compaction runs once per 10% of growth, not per publish.
    const maxBytes = this.#maxBytes * 0.9;
    const maxMessages = Math.floor(this.#maxMessages * 0.9);
    let drop = 0;
    while (
      drop < this.#entries.length &&
      (this.#bytes > maxBytes || this.#entries.length - drop > maxMessages)
    ) {
      const entry = this.#entries[drop] as KeptEntry;
      this.#bytes -= entry.size;
      this.#truncatedThrough = entry.offset;
      if (entry.supersedeKey && this.#newestBySupersedeKey.get(entry.supersedeKey) === entry.offset) {
        this.#newestBySupersedeKey.delete(entry.supersedeKey);
      }
      drop += 1;
    }
    if (drop > 0) this.#entries.splice(0, drop);
  }

  /**
   * Drops superseded progress entries older than the recent window: all but the oldest and the newest of
   * each key. The oldest stays because what came after it (a delta or an event of that test) may need it,
   * as when it is the progress that makes the test known to a reader.
   */
  #compact(): void {
    const now = this.#now();
    const protectFrom = Math.max(0, this.#entries.length - this.#recentMessages);
    const kept: KeptEntry[] = [];
    // Keys met so far in this pass, oldest first: the first entry of each is the oldest kept.
    const met = new Set<string>();
    let changed = false;
    for (let i = 0; i < this.#entries.length; i++) {
      const entry = this.#entries[i] as KeptEntry;
      const old = i < protectFrom && now - entry.publishedAt > this.#recentWindowMs;
      const key = entry.supersedeKey;
      const oldest = key !== undefined && !met.has(key);
      if (oldest) met.add(key);
      if (old && key && !oldest && this.#newestBySupersedeKey.get(key) !== entry.offset) {
        this.#bytes -= entry.size;
        changed = true;
        continue;
      }
      kept.push(entry);
    }
    if (changed) this.#entries = kept;
  }
}
