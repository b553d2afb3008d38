import type { DataMessage } from '@atp/ws-protocol';
import type { StreamEntry } from '@atp/ws-server';

/** Redis keys of one deployment, all under one prefix. */
export interface StreamKeys {
  readonly stream: string;
  readonly offset: string;
  readonly epoch: string;
  /** The nonce of the newest entry: what the next one links back to. */
  readonly last: string;
  /** The offset the current epoch took over the stream at (0 for a stream of its own). */
  readonly epochFrom: string;
  /** Bytes of the messages kept in the stream (their JSON). */
  readonly bytes: string;
  /** Hash: supersede key of a progress message → offset of its newest entry. */
  readonly newest: string;
  /** The newest offset trimmed from history for space or age: a position before it is a gap. */
  readonly truncated: string;
  /** Prefix of each process's client list (`<tag>:presence:<server id>`). */
  readonly presence: string;
  /** Sorted set of server ids, scored by when their client list expires: listed without SCAN (a cluster has no global SCAN). */
  readonly presenceIndex: string;
  readonly session: string;
  /** Prefix of the keys that mark an epoch the stream left (`<prefix>:retired:<epoch>`). */
  readonly retired: string;
  /** Pub/sub channel on which a process announces that it took a session (`[clientId, serverId, order]`). */
  readonly sessionTaken: string;
  /** Counter that orders session takes across processes. */
  readonly sessionOrder: string;
  /** Run id of the Redis process the current epoch lives in (a restart or failover changes it). */
  readonly run: string;
}

/**
 * The hash tag every key of a deployment is under: `{<prefix>}`, or the prefix itself when it has a
 * tag already (`{atp}:ws`). One tag puts every key in one hash slot, so that the Lua scripts, which
 * touch several keys, and MGET run on Redis Cluster too.
 */
export function hashTagged(prefix: string): string {
  return /\{[^{}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}

export function keysFor(prefixOrTag: string): StreamKeys {
  const prefix = hashTagged(prefixOrTag);
  return {
    stream: `${prefix}:stream`,
    offset: `${prefix}:offset`,
    epoch: `${prefix}:epoch`,
    last: `${prefix}:last`,
    epochFrom: `${prefix}:epoch-from`,
    bytes: `${prefix}:bytes`,
    newest: `${prefix}:newest`,
    truncated: `${prefix}:truncated`,
    presence: `${prefix}:presence:`,
    presenceIndex: `${prefix}:presence`,
    session: `${prefix}:session:`,
    sessionTaken: `${prefix}:session-taken`,
    sessionOrder: `${prefix}:session-order`,
    run: `${prefix}:run`,
    retired: `${prefix}:retired:`,
  };
}

/** A raw XRANGE / XREAD entry: `[id, [field, value, ...]]`. */
export type RawStreamEntry = [id: string, fields: string[]];

/** Offset of a stream ID `0-<offset>`. */
export function offsetOf(id: string): number {
  return Number(id.slice(id.indexOf('-') + 1));
}

/** A broker entry with the epoch it was appended under and its links. */
export interface EpochEntry extends StreamEntry {
  readonly epoch: string | undefined;
  /** Unique per entry. */
  readonly nonce: string | undefined;
  /** The nonce of the entry appended before it ('' for the first of a stream). */
  readonly prev: string | undefined;
}

/** Turns raw stream entries into broker entries. */
export function toEntries(raw: readonly RawStreamEntry[]): EpochEntry[] {
  const entries: EpochEntry[] = [];
  for (const [id, fields] of raw) {
    let json: string | undefined;
    let publishedAt: number | undefined;
    let epoch: string | undefined;
    let nonce: string | undefined;
    let prev: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = fields[i + 1] as string;
      const field = fields[i];
      if (field === 'm') json = value;
      else if (field === 't') publishedAt = Number(value);
      else if (field === 'e') epoch = value;
      else if (field === 'n') nonce = value;
      else if (field === 'p') prev = value;
    }
    if (json === undefined) continue;
    entries.push({
      offset: offsetOf(id),
      json,
      message: JSON.parse(json) as DataMessage,
      publishedAt,
      epoch,
      nonce,
      prev,
    });
  }
  return entries;
}
