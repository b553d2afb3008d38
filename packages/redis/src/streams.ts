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
  readonly presence: string;
  readonly session: string;
  /** Prefix of the keys that mark an epoch the stream left (`<prefix>:retired:<epoch>`). */
  readonly retired: string;
  /** Pub/sub channel on which a process announces that it took a session (`[clientId, serverId]`). */
  readonly sessionTaken: string;
}

export function keysFor(prefix: string): StreamKeys {
  return {
    stream: `${prefix}:stream`,
    offset: `${prefix}:offset`,
    epoch: `${prefix}:epoch`,
    last: `${prefix}:last`,
    epochFrom: `${prefix}:epoch-from`,
    presence: `${prefix}:presence:`,
    session: `${prefix}:session:`,
    sessionTaken: `${prefix}:session-taken`,
    retired: `${prefix}:retired:`,
  };
}

/**
 * Appends messages atomically: creates a new epoch when the stream's state was
 * lost (Redis restarted empty or was flushed), gives each message the next
 * offset as its stream ID `0-<offset>`, trims to the maximum length. Every
 * entry carries a nonce and the nonce of the entry before it, so a reader can
 * tell that the stream it follows was rewritten under it (a failover to a
 * replica that lagged, a restart from an older snapshot) even where offsets repeat.
 *
 * KEYS: stream, offset, epoch, last, epoch-from. ARGV: candidate epoch, max length, now (ms), nonce, json...
 * Returns: { epoch, first offset }.
 */
export const APPEND_SCRIPT = `
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5])
  redis.call('SET', KEYS[3], epoch)
end
local count = #ARGV - 4
local last = redis.call('INCRBY', KEYS[2], count)
local first = last - count + 1
local prev = redis.call('GET', KEYS[4]) or ''
for i = 1, count do
  local nonce = ARGV[4] .. '.' .. i
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. (first + i - 1), 'm', ARGV[i + 4], 't', ARGV[3], 'e', epoch, 'n', nonce, 'p', prev)
  prev = nonce
end
redis.call('SET', KEYS[4], prev)
return { epoch, first }
`;

/**
 * Starts a new epoch over the current stream once a reader found that the
 * stream diverged from what it had read (unless another process did already):
 * offsets up to the head are history of the new epoch, and readers go on
 * after the head.
 *
 * KEYS: epoch, offset, epoch-from. ARGV: the epoch the reader followed, the new epoch.
 * Returns: { current epoch ('' when none), offset it took over at }.
 */
export const REEPOCH_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if epoch == ARGV[1] then
  local head = tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], head)
  return { ARGV[2], head }
end
return { epoch or '', tonumber(redis.call('GET', KEYS[3]) or '0') }
`;

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
