import type { DataMessage } from '@atp/ws-protocol';
import type { StreamEntry } from '@atp/ws-server';

/** Redis keys of one deployment, all under one prefix. */
export interface StreamKeys {
  readonly stream: string;
  readonly offset: string;
  readonly epoch: string;
  readonly presence: string;
  readonly session: string;
}

export function keysFor(prefix: string): StreamKeys {
  return {
    stream: `${prefix}:stream`,
    offset: `${prefix}:offset`,
    epoch: `${prefix}:epoch`,
    presence: `${prefix}:presence:`,
    session: `${prefix}:session:`,
  };
}

/**
 * Appends messages atomically: creates a new epoch when the stream's state was
 * lost (Redis restarted empty or was flushed), gives each message the next
 * offset as its stream ID `0-<offset>`, trims to the maximum length.
 *
 * KEYS: stream, offset, epoch. ARGV: candidate epoch, max length, now (ms), json...
 * Returns: { epoch, first offset }.
 */
export const APPEND_SCRIPT = `
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], epoch)
end
local count = #ARGV - 3
local last = redis.call('INCRBY', KEYS[2], count)
local first = last - count + 1
for i = 1, count do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. (first + i - 1), 'm', ARGV[i + 3], 't', ARGV[3], 'e', epoch)
end
return { epoch, first }
`;

/** A raw XRANGE / XREAD entry: `[id, [field, value, ...]]`. */
export type RawStreamEntry = [id: string, fields: string[]];

/** Offset of a stream ID `0-<offset>`. */
export function offsetOf(id: string): number {
  return Number(id.slice(id.indexOf('-') + 1));
}

/** A broker entry with the epoch it was appended under. */
export interface EpochEntry extends StreamEntry {
  readonly epoch: string | undefined;
}

/** Turns raw stream entries into broker entries. */
export function toEntries(raw: readonly RawStreamEntry[]): EpochEntry[] {
  const entries: EpochEntry[] = [];
  for (const [id, fields] of raw) {
    let json: string | undefined;
    let publishedAt: number | undefined;
    let epoch: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = fields[i + 1] as string;
      if (fields[i] === 'm') json = value;
      else if (fields[i] === 't') publishedAt = Number(value);
      else if (fields[i] === 'e') epoch = value;
    }
    if (json === undefined) continue;
    entries.push({
      offset: offsetOf(id),
      json,
      message: JSON.parse(json) as DataMessage,
      publishedAt,
      epoch,
    });
  }
  return entries;
}
