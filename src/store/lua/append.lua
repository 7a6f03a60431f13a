-- Append events to one or more streams, each atomically, with what they change of its projections.
-- One call carries the appends a node makes in the same moment (hundreds of answers write every
-- ~150 ms); on a Redis Cluster, where each stream's keys live in their own slot, it carries one.
-- KEYS: per stream, its events (a Redis Stream), snapshot hash, answer's text and lease; or, on a
-- single Redis (where keys need not be declared to be routed), only what the four start with,
-- `<prefix>stream:{<id>}`, each of them being it and `:events`, `:snap`, `:text`, `:lease`: a call
-- carrying hundreds of streams sends one name per stream, not four.
-- ARGV[1]: the TTL (s). ARGV[2]: how many keys each stream is given (4, or 1 for the one name).
-- ARGV[3]: '-' when the caller keeps the indexes of streams itself (a Cluster: they live in another
-- slot), else "<now ms> <trim 0|1>" followed by ARGV[4] and ARGV[5], the index of recent streams and
-- the index of running ones: each stream appended to that asks for it is scored `now` in the first and
-- added to or removed from the second; with trim 1, members older than the TTL are dropped from both
-- and their TTLs renewed. (A failure there fails no append: it is returned, see below.)
-- Then per stream, in the order of its keys:
--   a header "<expected version> <events> <lease TTL ms> <flags> <state>", flags being four
--   characters: the text change ('a' append, 's' set, '-' none), the reply projection ('=' keep,
--   't' from the text, 'f' fixed, '-' drop), '1' when the snapshot leaves its answer to the text
--   (else '0'), and the indexes ('r' running, 'f' finished, '-' not touched; with the one name only);
--   state is the snapshot's state, '-' without a snapshot;
--   then the snapshot JSON (only with a state), the text (only with a text change), the lease JSON
--   (only with a lease TTL above 0), the fixed reply JSON (only with 'f'), and a (type, event JSON)
--   pair per event.
-- Returns per stream three values: 1, the new version and '' (or why its indexes could not be
-- updated); 0, the actual version and '', having written nothing (a version conflict); or -1, the
-- name of a key that holds another type and '', having written nothing for that stream (the other
-- streams are not held back by it).
local ttl = ARGV[1]
local per = tonumber(ARGV[2])
local at = 4
local now, trim, index_key, running_key
if ARGV[3] ~= '-' then
  now, trim = string.match(ARGV[3], '^(%d+) ([01])$')
  index_key, running_key = ARGV[4], ARGV[5]
  at = 6
end
local out = {}

-- The indexes are a listing's, not the stream's: what fails there is told, and nothing else undone.
local function failed(reply)
  return type(reply) == 'table' and reply['err'] or nil
end

local function touch(id, finished)
  local err = failed(redis.pcall('ZADD', index_key, now, id))
  if not err then
    if finished then
      err = failed(redis.pcall('ZREM', running_key, id))
    else
      err = failed(redis.pcall('ZADD', running_key, now, id))
    end
  end
  return err or ''
end

local function holds(key, kind)
  local found = redis.call('TYPE', key)['ok']
  return found == 'none' or found == kind
end

for s = 0, #KEYS / per - 1 do
  local events_key, snap_key, text_key, lease_key
  if per == 4 then
    events_key, snap_key, text_key, lease_key = KEYS[4 * s + 1], KEYS[4 * s + 2], KEYS[4 * s + 3], KEYS[4 * s + 4]
  else
    local base = KEYS[s + 1]
    events_key, snap_key, text_key, lease_key = base .. ':events', base .. ':snap', base .. ':text', base .. ':lease'
  end
  local expected, count, lease_ttl_ms, text_change, reply, answer_apart, index, state =
    string.match(ARGV[at], '^(%d+) (%d+) (%d+) (.)(.)(.)(.) (%S+)$')
  expected, count = tonumber(expected), tonumber(count)
  at = at + 1
  local snapshot, text, lease, fixed = '', '', '', ''
  if state ~= '-' then snapshot = ARGV[at]; at = at + 1 end
  if text_change ~= '-' then text = ARGV[at]; at = at + 1 end
  if lease_ttl_ms ~= '0' then lease = ARGV[at]; at = at + 1 end
  if reply == 'f' then fixed = ARGV[at]; at = at + 1 end
  local first_event = at
  at = at + 2 * count

  local bad
  if not holds(snap_key, 'hash') then bad = snap_key
  elseif not holds(events_key, 'stream') then bad = events_key
  elseif not holds(text_key, 'string') then bad = text_key
  end
  -- The version lives in the snapshot hash, so the check and the appends are one step.
  local version = bad and 0 or tonumber(redis.call('HGET', snap_key, 'v') or '0')
  if bad then
    out[#out + 1] = -1
    out[#out + 1] = bad
    out[#out + 1] = ''
  elseif version ~= expected then
    out[#out + 1] = 0
    out[#out + 1] = version
    out[#out + 1] = ''
  elseif count == 0 then
    out[#out + 1] = 1
    out[#out + 1] = version
    out[#out + 1] = ''
  else
    local last_id
    for i = 0, count - 1 do
      local e = first_event + 2 * i
      last_id = redis.call('XADD', events_key, '*', 't', ARGV[e], 'e', ARGV[e + 1])
    end
    version = version + count

    if text_change == 'a' then
      redis.call('APPEND', text_key, text)
    elseif text_change == 's' then
      redis.call('SET', text_key, text)
    end

    if snapshot ~= '' then
      redis.call('HSET', snap_key, 'v', version, 's', snapshot, 'sv', version, 'sid', last_id, 'st', state)
      -- A snapshot that leaves its answer out records how long the text was: a reader takes it from there.
      if answer_apart == '1' then
        redis.call('HSET', snap_key, 'sl', redis.call('STRLEN', text_key))
      else
        redis.call('HDEL', snap_key, 'sl')
      end
    else
      redis.call('HSET', snap_key, 'v', version)
      -- The text no longer starts with the stored snapshot's answer: readers fold from the start.
      if text_change == 's' then redis.call('HDEL', snap_key, 's', 'sv', 'sid', 'sl') end
    end

    if reply == 't' then
      redis.call('HSET', snap_key, 'rm', 't')
      redis.call('HDEL', snap_key, 'r')
    elseif reply == '-' then
      redis.call('HDEL', snap_key, 'rm', 'r')
    elseif reply == 'f' then
      redis.call('HSET', snap_key, 'rm', 'f', 'r', fixed)
    end

    if lease ~= '' then redis.call('SET', lease_key, lease, 'PX', lease_ttl_ms) end

    redis.call('EXPIRE', events_key, ttl)
    redis.call('EXPIRE', snap_key, ttl)
    redis.call('EXPIRE', text_key, ttl)
    out[#out + 1] = 1
    out[#out + 1] = version
    -- The stream id is what the hash tag of its keys holds.
    out[#out + 1] = (index ~= '-' and index_key) and touch(string.match(events_key, '{([^{}]*)}[^{}]*$'), index == 'f') or ''
  end
end
if trim == '1' then
  local oldest = tonumber(now) - ttl * 1000
  for _, key in ipairs({index_key, running_key}) do
    redis.pcall('ZREMRANGEBYSCORE', key, '-inf', oldest)
    redis.pcall('EXPIRE', key, ttl)
  end
end
return out
