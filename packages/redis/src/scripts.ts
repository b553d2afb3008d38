/**
 * The Lua scripts that keep the Redis stream consistent: each runs atomically
 * in Redis, so several hub processes appending, compacting and trimming at
 * once never see half of another's change.
 */

/**
 * Appends messages: creates a new epoch when the stream's state was lost
 * (Redis restarted empty or was flushed), gives each message the next offset
 * as its stream ID `0-<offset>`, and counts its bytes. A progress message's
 * supersede key records it as the newest of its key (field `<key>` of the
 * newest hash), and as the oldest when none is kept yet (field `f:<key>`). Every entry carries a
 * nonce and the nonce of the entry before it, so a reader can tell that the
 * stream it follows was rewritten under it (a failover to a replica that
 * lagged, a restart from an older snapshot) even where offsets repeat.
 *
 * KEYS: stream, offset, epoch, last, epoch-from, bytes, newest, truncated.
 * ARGV: candidate epoch, now (ms), nonce, then json and supersede key ('' for none) per message.
 * Returns: { epoch, first offset, bytes kept, entries kept }.
 */
export const APPEND_SCRIPT = `
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
  redis.call('SET', KEYS[3], epoch)
end
local count = (#ARGV - 3) / 2
local last = redis.call('INCRBY', KEYS[2], count)
local first = last - count + 1
local prev = redis.call('GET', KEYS[4]) or ''
local bytes = 0
for i = 1, count do
  local json = ARGV[2 + 2 * i]
  local key = ARGV[3 + 2 * i]
  local offset = first + i - 1
  local nonce = ARGV[3] .. '.' .. i
  if key ~= '' then
    redis.call('XADD', KEYS[1], '0-' .. offset, 'm', json, 't', ARGV[2], 'e', epoch, 'n', nonce, 'p', prev, 'k', key)
    redis.call('HSET', KEYS[7], key, offset)
    redis.call('HSETNX', KEYS[7], 'f:' .. key, offset)
  else
    redis.call('XADD', KEYS[1], '0-' .. offset, 'm', json, 't', ARGV[2], 'e', epoch, 'n', nonce, 'p', prev)
  end
  bytes = bytes + string.len(json)
  prev = nonce
end
redis.call('SET', KEYS[4], prev)
local total = redis.call('INCRBY', KEYS[6], bytes)
return { epoch, first, total, redis.call('XLEN', KEYS[1]) }
`;

/**
 * Starts a new epoch over the current stream once a reader found that the
 * stream diverged from what it had read (unless another process did already):
 * offsets up to where the two still agree are not history of the new epoch,
 * and readers go on after it, so that what was appended to the new timeline
 * is still delivered.
 *
 * KEYS: epoch, offset, epoch-from, run. ARGV: the epoch the reader followed, the new epoch, the offset
 * to take over at ('' for the head), the run id of this Redis (recorded: the new epoch lives in it).
 * Returns: { current epoch ('' when none), offset it took over at }.
 */
export const REEPOCH_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if epoch == ARGV[1] then
  local from = tonumber(ARGV[3]) or tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], from)
  if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4]) end
  return { ARGV[2], from }
end
return { epoch or '', tonumber(redis.call('GET', KEYS[3]) or '0') }
`;

/** Field `name` of a raw stream entry's field list, in Lua. */
const FIELD = `
local function field(fields, name)
  for j = 1, #fields, 2 do
    if fields[j] == name then return fields[j + 1] end
  end
  return nil
end
`;

/**
 * Compacts one page of history: drops progress messages that a newer one of
 * the same key supersedes, unless they are recent (newer than a time, or
 * among the newest entries) or the oldest kept of their key (what came after
 * it, a delta of that test, may need it).
 *
 * KEYS: stream, bytes, newest. ARGV: offset to scan after, page size, cutoff time (ms), newest offset that may go.
 * Returns: { last offset scanned (0 when the page was empty), entries removed }.
 */
export const COMPACT_SCRIPT = `${FIELD}
local entries = redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
local removed = 0
local last = 0
for _, entry in ipairs(entries) do
  local offset = tonumber(string.sub(entry[1], 3))
  if offset > tonumber(ARGV[4]) then break end
  last = offset
  local fields = entry[2]
  local key = field(fields, 'k')
  local oldest = 0
  if key then
    -- '-1' (or none): the oldest of the key was trimmed; this one, met first from the start, is the oldest now.
    local marked = redis.call('HGET', KEYS[3], 'f:' .. key)
    if not marked or marked == '-1' then
      redis.call('HSET', KEYS[3], 'f:' .. key, offset)
      marked = tostring(offset)
    end
    oldest = tonumber(marked)
  end
  if key and tonumber(field(fields, 't') or '0') < tonumber(ARGV[3]) then
    local newest = tonumber(redis.call('HGET', KEYS[3], key) or '0')
    if newest ~= offset and oldest ~= offset then
      redis.call('XDEL', KEYS[1], entry[1])
      redis.call('DECRBY', KEYS[2], string.len(field(fields, 'm') or ''))
      removed = removed + 1
    end
  end
end
return { last, removed }
`;

/**
 * Trims the oldest history, at most a page of it: while the stream holds more
 * than the byte or entry limits, or its oldest entry is older than a time.
 * Records the newest offset trimmed, so that a position before it reads as a gap.
 *
 * KEYS: stream, bytes, newest, truncated. ARGV: most bytes, most entries, cutoff time (ms, 0 = none), page size.
 * Returns: { entries removed, 1 when within the limits }.
 */
export const TRIM_SCRIPT = `${FIELD}
local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
local length = redis.call('XLEN', KEYS[1])
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[4])
local removed = 0
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local old = tonumber(field(fields, 't') or '0') < tonumber(ARGV[3])
  if bytes <= tonumber(ARGV[1]) and length <= tonumber(ARGV[2]) and not old then
    return { removed, 1 }
  end
  local offset = tonumber(string.sub(entry[1], 3))
  local size = string.len(field(fields, 'm') or '')
  redis.call('XDEL', KEYS[1], entry[1])
  redis.call('DECRBY', KEYS[2], size)
  redis.call('SET', KEYS[4], offset)
  local key = field(fields, 'k')
  if key and tonumber(redis.call('HGET', KEYS[3], key) or '0') == offset then
    -- The newest of its key: nothing of the key is left.
    redis.call('HDEL', KEYS[3], key, 'f:' .. key)
  elseif key and tonumber(redis.call('HGET', KEYS[3], 'f:' .. key) or '0') == offset then
    -- The oldest of its key: the next compaction marks the oldest left (met first from the start).
    redis.call('HSET', KEYS[3], 'f:' .. key, '-1')
  end
  bytes = bytes - size
  length = length - 1
  removed = removed + 1
end
return { removed, #entries < tonumber(ARGV[4]) and 1 or 0 }
`;

/**
 * Announces that a process took a session: numbers the take in one order for
 * all processes and publishes it, in one step, so that every process sees the
 * takes in the order of their numbers.
 *
 * KEYS: session order counter. ARGV: channel, client id, server id.
 * Returns: the take's number.
 */
export const TAKE_SESSION_SCRIPT = `
local order = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], cjson.encode({ ARGV[2], ARGV[3], order }))
return order
`;

/**
 * Checks that the Redis serving the stream is the one whose life the epoch
 * belongs to. A different run id means Redis restarted or failed over: what
 * it holds may be older than what was served (a snapshot taken before the
 * last writes, a replica that lagged), so a new epoch takes over at its head,
 * unless another process did already. Recorded the first time it is seen.
 *
 * KEYS: epoch, offset, epoch-from, run. ARGV: this Redis's run id, a new epoch, the offset to take
 * over at ('' for the head).
 * Returns: { epoch ('' when none yet), offset it took over at, or -1 when unchanged }.
 */
export const CHECK_RUN_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then return { '', -1 } end
local run = redis.call('GET', KEYS[4])
if run == ARGV[1] then return { epoch, -1 } end
if not run then
  redis.call('SET', KEYS[4], ARGV[1])
  return { epoch, -1 }
end
local from = tonumber(ARGV[3]) or tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], from)
redis.call('SET', KEYS[4], ARGV[1])
return { ARGV[2], from }
`;

/**
 * Moves the start of the current epoch down to where a reader joining it
 * still agrees with the stream, when that is lower: another process started
 * the epoch at the point it had read to, and what the stream holds between the
 * two points is on its timeline but not on the joining reader's (that reader
 * delivered other entries there, which Redis lost). Those entries are then the
 * new epoch's, delivered by the joining reader behind the epoch's gap instead
 * of being counted into it.
 *
 * KEYS: epoch, epoch-from. ARGV: the epoch joined, the offset the reader agrees through.
 * Returns: the offset the epoch starts at now (-1 when the epoch changed meanwhile).
 */
export const LOWER_EPOCH_START_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local from = tonumber(redis.call('GET', KEYS[2]) or '0')
local agreed = tonumber(ARGV[2])
if agreed < from then
  redis.call('SET', KEYS[2], agreed)
  return agreed
end
return from
`;
